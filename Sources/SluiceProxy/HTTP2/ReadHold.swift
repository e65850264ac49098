/// Holds a handler's `read()` while the other side of a relay cannot take more, and says
/// when to pass on the one read it swallowed. It never calls `read()` itself: a read can
/// deliver frames synchronously, whose handling changes the hold again.
struct ReadHold {
    private var held = false
    private var pending = false

    /// From the handler's `read(context:)`: true when the read is to be passed on now.
    mutating func admit() -> Bool {
        if self.held {
            self.pending = true
            return false
        }
        return true
    }

    /// Holds or releases; true when a held read is now to be issued.
    mutating func hold(_ held: Bool) -> Bool {
        self.held = held
        guard !held, self.pending else { return false }
        self.pending = false
        return true
    }
}
