#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// struct mmsghdr (linux/socket.h): a message header and the bytes received or sent, in C's
/// layout (`msghdr`, then an unsigned int; 64 bytes on 64-bit Linux, checked by `available`).
struct MessageHeader {
    var msg_hdr: msghdr
    var msg_len: UInt32
}

/// recvmmsg(2) and sendmmsg(2) for the DNS proxy's hit thread. Swift's Glibc module is built
/// without _GNU_SOURCE, so neither call nor struct mmsghdr is visible to Swift; they are looked
/// up in the C library once. (Importing a C module that declares them, in the file that also
/// opens sockets, made the release build's whole-module compile of SluiceProxy lose Glibc's
/// IPPROTO_IPV6 and SOCK_STREAM in other files.)
enum MessageVectors {
    typealias Receive = @convention(c) (Int32, UnsafeMutableRawPointer?, UInt32, Int32, UnsafeMutableRawPointer?) -> Int32
    typealias Send = @convention(c) (Int32, UnsafeMutableRawPointer?, UInt32, Int32) -> Int32

    private static let recvmmsg = lookup("recvmmsg", as: Receive.self)
    private static let sendmmsg = lookup("sendmmsg", as: Send.self)

    /// True when both calls were found and the header has the kernel's layout.
    static var available: Bool {
        recvmmsg != nil && sendmmsg != nil && MemoryLayout<MessageHeader>.stride == 64
            && MemoryLayout<MessageHeader>.offset(of: \.msg_len) == MemoryLayout<msghdr>.size
    }

    /// recvmmsg(fd, vector, count, flags, timeout); -1 with ENOSYS when it was not found.
    static func receive(_ fd: Int32, _ vector: UnsafeMutablePointer<MessageHeader>, _ count: UInt32, _ flags: Int32, _ timeout: UnsafeMutablePointer<timespec>?) -> Int32 {
        guard let recvmmsg else {
            errno = ENOSYS
            return -1
        }
        return recvmmsg(fd, UnsafeMutableRawPointer(vector), count, flags, timeout.map { UnsafeMutableRawPointer($0) })
    }

    /// sendmmsg(fd, vector, count, flags); -1 with ENOSYS when it was not found.
    static func send(_ fd: Int32, _ vector: UnsafeMutablePointer<MessageHeader>, _ count: UInt32, _ flags: Int32) -> Int32 {
        guard let sendmmsg else {
            errno = ENOSYS
            return -1
        }
        return sendmmsg(fd, UnsafeMutableRawPointer(vector), count, flags)
    }

    /// The C library's function `name` (dlsym with RTLD_DEFAULT, a null handle).
    private static func lookup<Function>(_ name: String, as type: Function.Type) -> Function? {
        dlsym(UnsafeMutableRawPointer(bitPattern: 0), name).map { unsafeBitCast($0, to: type) }
    }
}
