/*
 * nft_batch: one nftables transaction, built in paged buffers and sent as a
 * single netlink batch (BEGIN, messages, END) with one sendmsg().
 *
 * Why: the kernel commits an nftables batch only when it reads END, so a
 * transaction is all-or-nothing; a batch larger than one buffer is paged
 * (libnftnl's nftnl_batch) and never sent half-built. Every message gets a
 * sequence number and a short description ("add element be4 (svc default/web)")
 * so an error ACK from the kernel is mapped back to the object that failed.
 *
 * Usage: b = nft_batch_new(); for each message { buf = nft_batch_msg_buf(b,
 * &seq); build the message into buf with libnftnl using seq;
 * nft_batch_msg_done(b, "what ...") }; nft_batch_send(b, sock, ...).
 * Single-threaded; a batch is sent once and then freed.
 */
#ifndef SVCD_NFT_BATCH_H
#define SVCD_NFT_BATCH_H

#include <stddef.h>
#include <stdint.h>

struct mnl_socket;
struct nft_batch;

/* Largest single message a caller may build into a buffer (bytes). */
#define NFT_BATCH_MSG_MAX (96u * 1024u)

/* Opens a NETLINK_NETFILTER socket with send/receive buffers raised for big
 * batches. NULL with errno set on failure. Free with mnl_socket_close(). */
struct mnl_socket *nft_sock_open(void);

/* A new empty batch (BEGIN already written); NULL on ENOMEM. */
struct nft_batch *nft_batch_new(void);
/* Frees the batch and its descriptions. Accepts NULL. */
void nft_batch_free(struct nft_batch *b);

/* Where to build the next message (at least NFT_BATCH_MSG_MAX bytes of
 * room); *seq is the sequence number to put in its header. */
char *nft_batch_msg_buf(struct nft_batch *b, uint32_t *seq);
/* Accepts the message just built; `what` (printf format) describes it for
 * error messages. 0, or -1 on ENOMEM (the batch is then unusable). */
int nft_batch_msg_done(struct nft_batch *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Number of messages accepted so far (BEGIN/END not counted). */
size_t nft_batch_count(const struct nft_batch *b);
/* Total bytes queued so far. */
size_t nft_batch_bytes(const struct nft_batch *b);

/* Appends END and sends the whole batch with one sendmsg(), then reads every
 * reply. Returns 0 when the kernel committed it, or a negative errno; on
 * failure err gets "<description of the failing message>: <strerror>" for
 * the first error (and the count of further ones). The batch cannot be sent
 * twice. */
int nft_batch_send(struct nft_batch *b, struct mnl_socket *nl, char *err, size_t errlen);

#endif
