import SluiceCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A random version-4 UUID, the id Envoy puts in `x-request-id` when a request has none;
/// written out as text only into the forwarded head and the log line.
///
/// The 122 random bits come from a per-thread xoshiro256** generator seeded once from the
/// system generator, not from `SystemRandomNumberGenerator` directly: that one costs a
/// `getrandom(2)` syscall per call, two per request. A request id needs to be unique, not
/// unpredictable, and 256 bits of random seed per thread make a collision as unlikely as
/// with the system generator.
func makeRequestID() -> GeneratedRequestID {
    let state = RequestIDGenerator.threadState()
    let high = RequestIDGenerator.next(state)
    let low = RequestIDGenerator.next(state)
    return GeneratedRequestID(random: high, low)
}

/// xoshiro256** (Blackman and Vigna) with one state per thread, kept behind a pthread key.
///
/// Each thread's state is four words of heap memory that only that thread ever touches (the
/// key hands every thread its own pointer), so no lock is needed and nothing mutable is shared:
/// the only global is the key, an immutable integer. The key's destructor frees the state when
/// the thread exits. A forked child would repeat its parent's sequence; Sluice never forks
/// without exec.
enum RequestIDGenerator {
    /// The key under which each thread keeps its state; created on first use (global `let`s
    /// are initialised once, thread-safely).
    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        #if canImport(Darwin)
        let status = pthread_key_create(&key) { $0.deallocate() }
        #else
        let status = pthread_key_create(&key) { $0?.deallocate() }
        #endif
        // Only fails when the process is out of keys (PTHREAD_KEYS_MAX, >= 128): a bug, not input.
        precondition(status == 0, "pthread_key_create failed: \(status)")
        return key
    }()

    /// This thread's generator state, created and seeded on the thread's first call.
    static func threadState() -> UnsafeMutablePointer<UInt64> {
        if let raw = pthread_getspecific(key) {
            return raw.assumingMemoryBound(to: UInt64.self)
        }
        let state = UnsafeMutablePointer<UInt64>.allocate(capacity: 4)
        seed(state)
        // Cannot fail for a valid key short of ENOMEM; then the state is simply not reused.
        _ = pthread_setspecific(key, state)
        return state
    }

    /// Fills the four words from the system generator. xoshiro's only bad state is all zeros,
    /// which 256 random bits all but never are; it is ruled out anyway.
    static func seed(_ state: UnsafeMutablePointer<UInt64>) {
        var system = SystemRandomNumberGenerator()
        repeat {
            for i in 0..<4 { state[i] = system.next() }
        } while state[0] | state[1] | state[2] | state[3] == 0
    }

    /// The next 64 bits of the sequence, advancing the state.
    static func next(_ s: UnsafeMutablePointer<UInt64>) -> UInt64 {
        let result = (s[1] &* 5).rotatedLeft(by: 7) &* 9
        let t = s[1] << 17
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = s[3].rotatedLeft(by: 45)
        return result
    }
}

extension UInt64 {
    fileprivate func rotatedLeft(by n: UInt64) -> UInt64 {
        (self << n) | (self >> (64 - n))
    }
}
