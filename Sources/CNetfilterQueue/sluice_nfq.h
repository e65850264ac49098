// The NFQUEUE calls Sluice's UDP path needs, as a few small inline functions over Debian's
// libnetfilter_queue (nfq_nlmsg_*) and libmnl, so that the Swift side never walks netlink
// attributes itself. Patterned on libnetfilter_queue's examples/nf-queue.c.
#ifndef SLUICE_NFQ_H
#define SLUICE_NFQ_H

#include <arpa/inet.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <libnetfilter_queue/libnetfilter_queue.h>

/// One queued packet, pointing into the receive buffer (valid until the next receive).
typedef struct {
    uint32_t id;            // packet id, for the verdict
    uint16_t hw_protocol;   // ETH_P_IP or ETH_P_IPV6 (host order)
    const uint8_t *payload; // the network-layer packet, at most copy_range bytes
    uint32_t payload_len;
    uint32_t orig_len;      // the packet's full length (NFQA_CAP_LEN), or payload_len
    uint32_t skb_info;      // NFQA_SKB_* flags (NFQA_SKB_GSO: a GSO super-packet)
    uint32_t uid;           // sending socket's uid, or UINT32_MAX when unknown
} sluice_nfq_packet;

/// Sends one config message and waits for its ack: 0, or -1 with errno set.
static inline int sluice_nfq_config_acked(struct mnl_socket *nl, struct nlmsghdr *nlh) {
    char buf[MNL_SOCKET_BUFFER_SIZE];
    unsigned int portid = mnl_socket_get_portid(nl);
    nlh->nlmsg_flags |= NLM_F_ACK;
    nlh->nlmsg_seq = (uint32_t)time(NULL);
    if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) return -1;
    ssize_t n = mnl_socket_recvfrom(nl, buf, sizeof buf);
    if (n < 0) return -1;
    return mnl_cb_run(buf, (size_t)n, nlh->nlmsg_seq, portid, NULL, NULL) < 0 ? -1 : 0;
}

/// Opens a netlink socket and binds it to NFQUEUE `queue` in copy-packet mode: at most
/// `copy_range` bytes of each packet, GSO packets delivered whole (NFQA_CFG_F_GSO: no
/// segmentation for us, we only read headers), the sender's uid attached, at most `max_len`
/// packets waiting in the kernel. A receive timeout of `timeout_ms` lets the reader notice
/// a stop request. NULL with errno set on failure (EPERM without CAP_NET_ADMIN, EBUSY when
/// another process holds the queue).
static inline struct mnl_socket *sluice_nfq_open(uint16_t queue, uint32_t copy_range,
                                                 uint32_t max_len, int rcvbuf, int timeout_ms) {
    char buf[MNL_SOCKET_BUFFER_SIZE];
    struct nlmsghdr *nlh;
    int saved, one = 1;
    struct mnl_socket *nl = mnl_socket_open(NETLINK_NETFILTER);
    if (nl == NULL) return NULL;
    if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) goto fail;

    nlh = nfq_nlmsg_put(buf, NFQNL_MSG_CONFIG, queue);
    nfq_nlmsg_cfg_put_cmd(nlh, AF_INET, NFQNL_CFG_CMD_BIND);
    if (sluice_nfq_config_acked(nl, nlh) < 0) goto fail;

    nlh = nfq_nlmsg_put(buf, NFQNL_MSG_CONFIG, queue);
    nfq_nlmsg_cfg_put_params(nlh, NFQNL_COPY_PACKET, (int)copy_range);
    nfq_nlmsg_cfg_put_qmaxlen(nlh, max_len);
    mnl_attr_put_u32(nlh, NFQA_CFG_FLAGS, htonl(NFQA_CFG_F_GSO | NFQA_CFG_F_UID_GID));
    mnl_attr_put_u32(nlh, NFQA_CFG_MASK, htonl(NFQA_CFG_F_GSO | NFQA_CFG_F_UID_GID));
    if (sluice_nfq_config_acked(nl, nlh) < 0) goto fail;

    // A burst larger than the socket buffer loses packets (they stay queued in the
    // kernel until the queue's max length); ENOBUFS would only tell us so.
    mnl_socket_setsockopt(nl, NETLINK_NO_ENOBUFS, &one, sizeof one);
    setsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    setsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return nl;
fail:
    saved = errno;
    mnl_socket_close(nl);
    errno = saved;
    return NULL;
}

/// Receives one batch of messages into buf: bytes received, 0 on timeout, -1 on error.
static inline ssize_t sluice_nfq_receive(struct mnl_socket *nl, void *buf, size_t size) {
    ssize_t n = recv(mnl_socket_get_fd(nl), buf, size, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return 0;
    return n;
}

/// Reads the packet message at *offset of buf[0..<len] and moves *offset past it.
/// Returns 1 with *out filled, 0 for a message that is not a packet (skipped), -1 at the end.
static inline int sluice_nfq_next(const void *buf, size_t len, size_t *offset, sluice_nfq_packet *out) {
    struct nlattr *attr[NFQA_MAX + 1];
    const struct nlmsghdr *nlh;
    int remaining;
    if (*offset >= len) return -1;
    nlh = (const struct nlmsghdr *)((const char *)buf + *offset);
    remaining = (int)(len - *offset);
    if (!mnl_nlmsg_ok(nlh, remaining)) return -1;
    *offset += NLMSG_ALIGN(nlh->nlmsg_len);
    if ((nlh->nlmsg_type & 0xff) != NFQNL_MSG_PACKET) return 0;
    memset(attr, 0, sizeof attr);
    if (nfq_nlmsg_parse(nlh, attr) < 0 || attr[NFQA_PACKET_HDR] == NULL) return 0;
    const struct nfqnl_msg_packet_hdr *ph = mnl_attr_get_payload(attr[NFQA_PACKET_HDR]);
    out->id = ntohl(ph->packet_id);
    out->hw_protocol = ntohs(ph->hw_protocol);
    if (attr[NFQA_PAYLOAD] != NULL) {
        out->payload = mnl_attr_get_payload(attr[NFQA_PAYLOAD]);
        out->payload_len = mnl_attr_get_payload_len(attr[NFQA_PAYLOAD]);
    } else {
        out->payload = NULL;
        out->payload_len = 0;
    }
    out->orig_len = attr[NFQA_CAP_LEN] ? ntohl(mnl_attr_get_u32(attr[NFQA_CAP_LEN])) : out->payload_len;
    out->skb_info = attr[NFQA_SKB_INFO] ? ntohl(mnl_attr_get_u32(attr[NFQA_SKB_INFO])) : 0;
    out->uid = attr[NFQA_UID] ? ntohl(mnl_attr_get_u32(attr[NFQA_UID])) : UINT32_MAX;
    return 1;
}

/// Appends a verdict message for packet `id` to buf at *offset (all of a batch go out in one
/// send). Returns 0, or -1 when buf has no room left (send what is there first).
static inline int sluice_nfq_put_verdict(void *buf, size_t size, size_t *offset, uint16_t queue,
                                         uint32_t id, int accept) {
    // A verdict message: nlmsghdr + nfgenmsg + NFQA_VERDICT_HDR, well under 64 bytes.
    if (size - *offset < 64) return -1;
    struct nlmsghdr *nlh = nfq_nlmsg_put((char *)buf + *offset, NFQNL_MSG_VERDICT, queue);
    nfq_nlmsg_verdict_put(nlh, (int)id, accept ? NF_ACCEPT : NF_DROP);
    *offset += NLMSG_ALIGN(nlh->nlmsg_len);
    return 0;
}

/// Sends buf[0..<len] (the batch of verdicts): 0, or -1 with errno set.
static inline int sluice_nfq_send(struct mnl_socket *nl, const void *buf, size_t len) {
    return mnl_socket_sendto(nl, buf, len) < 0 ? -1 : 0;
}

static inline void sluice_nfq_close(struct mnl_socket *nl) { mnl_socket_close(nl); }

#endif
