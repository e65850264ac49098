// recvmmsg and sendmmsg for the DNS proxy's hit thread (Sources/SluiceProxy/DNS/
// DNSDatagramListener.swift). Swift's Glibc module is built without _GNU_SOURCE, so neither
// the calls nor struct mmsghdr are visible to Swift: they are declared here with the kernel's
// layout (struct msghdr, then the length) and made as raw system calls. Kept in this module,
// the one C surface Sluice has.
#ifndef SLUICE_MMSG_H
#define SLUICE_MMSG_H

#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

/// struct mmsghdr (linux/socket.h).
typedef struct {
    struct msghdr msg_hdr;
    unsigned int msg_len;
} sluice_mmsghdr;

/// recvmmsg(2) without a timeout; MSG_WAITFORONE (0x10000) blocks for the first datagram only.
static inline int sluice_recvmmsg(int fd, sluice_mmsghdr *vector, unsigned int count, int flags) {
    return (int)syscall(SYS_recvmmsg, fd, vector, count, flags, (void *)0);
}

/// sendmmsg(2).
static inline int sluice_sendmmsg(int fd, sluice_mmsghdr *vector, unsigned int count, int flags) {
    return (int)syscall(SYS_sendmmsg, fd, vector, count, flags);
}

static const int sluice_msg_waitforone = 0x10000;

#endif
