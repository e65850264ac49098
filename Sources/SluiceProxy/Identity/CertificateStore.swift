public import Foundation
import NIOConcurrencyHelpers
import SluiceIdentity

/// The mesh certificates from `--certs DIR` in force now. New connections take the current
/// credentials; a rotation swaps them whole, so open connections keep theirs and are not cut.
public final class CertificateStore: Sendable {
    /// The directory given by `--certs`.
    public let directory: String
    private let current: NIOLockedValueBox<MeshCredentials>

    /// Loads `directory` now; throws (with the reason) if it is not a usable identity.
    public init(directory: String, now: Date = Date()) throws {
        self.directory = directory
        self.current = NIOLockedValueBox(try MeshCredentials.load(directory: directory, now: now))
    }

    /// The credentials new connections use.
    public var credentials: MeshCredentials { self.current.withLockedValue { $0 } }

    /// What a look at the files found.
    public enum ReloadOutcome {
        /// The files are as they were when last applied (or still changing).
        case unchanged
        /// New, valid files: now in force.
        case rotated(from: MeshCredentials, to: MeshCredentials)
        /// New files that are not a usable identity: the old credentials stay.
        case rejected(kept: MeshCredentials, reason: String)
    }

    /// Loads the files again if their identities differ from those applied. `settled` is
    /// the fingerprint seen on the previous look: a change is applied only once it has stayed
    /// the same for one look, so a copy still in progress is not taken half-written.
    func reloadIfChanged(settled: inout [String]?, now: Date) -> ReloadOutcome {
        let old = self.credentials
        let seen = ConfigWatcher.fingerprint(MeshCredentials.paths(self.directory))
        guard seen != old.fingerprint else {
            settled = nil
            return .unchanged
        }
        guard seen == settled else {
            settled = seen
            return .unchanged
        }
        settled = nil
        do {
            let new = try MeshCredentials.load(directory: self.directory, now: now)
            self.current.withLockedValue { $0 = new }
            return .rotated(from: old, to: new)
        } catch {
            // Remember the bad files' stamp so they are reported once, not every look.
            let kept = old.withFingerprint(seen)
            self.current.withLockedValue { $0 = kept }
            return .rejected(kept: kept, reason: "\(error)")
        }
    }
}
