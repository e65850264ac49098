import NIOHTTP2

/// The NIOHTTP2 user events a frame relay acts on, told apart by their dynamic type before
/// any cast. NIOHTTP2 sends several per stream (created, closed, window updates on each side),
/// and an `as` pattern that fails walks the runtime's cast machinery every time: comparing
/// the type first leaves one cast that succeeds.
enum HTTP2RelayEvent {
    case windowUpdated(NIOHTTP2WindowUpdatedEvent)
    case streamClosed(StreamClosedEvent)
    /// Nothing to do: a stream becomes the relay's on its first HEADERS.
    case streamCreated
    /// Anything else, passed on.
    case other

    init(_ event: Any) {
        let type = Swift.type(of: event)
        if type == NIOHTTP2WindowUpdatedEvent.self, let event = event as? NIOHTTP2WindowUpdatedEvent {
            self = .windowUpdated(event)
        } else if type == StreamClosedEvent.self, let event = event as? StreamClosedEvent {
            self = .streamClosed(event)
        } else if type == NIOHTTP2StreamCreatedEvent.self {
            self = .streamCreated
        } else {
            self = .other
        }
    }
}
