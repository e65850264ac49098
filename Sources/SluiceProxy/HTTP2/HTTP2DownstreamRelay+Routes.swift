import NIOCore
import NIOHPACK
import NIOHTTP2
import SluiceCore

// What VirtualService routes ask of an HTTP/2 stream beyond where it goes, as of an HTTP/1
// request (HTTPProxyHandler+Routes): route-decided answers (a redirect, 404 NR at a sidecar,
// 503 NC), fault delay and abort, `rewrite` and `headers.request` on the request's header
// block, `headers.response` on the response's, and the route timeout (504 UT before the
// response head). The pure parts are SluiceCore's (`HTTPRouteOutcome`, `HeaderEdits`).
extension HTTP2DownstreamRelay {
    /// A refusal the routes decided (`RouteLocalAnswer.forRefusal`, as for HTTP/1), answered
    /// on the stream: true when answered, false for the role's default refusal.
    func answeredRouteRefusal(_ stream: HTTP2RelayStream, decision: Decision, request: HPACKHeaders, authority: String, path: String) -> Bool {
        guard let answer = RouteLocalAnswer.forRefusal(
            decision, role: self.runtime.role, scheme: request.first(name: ":scheme") ?? "http", authority: authority, path: path)
        else { return false }
        self.respondLocally(stream, status: answer.status.code, flag: answer.flag, body: answer.body, fields: answer.fields)
        return true
    }

    /// Readies an allowed stream for what its route asks: `rewrite` and `headers.request` into
    /// `request`, `headers.response` and the timeout onto the stream. Returns the route's
    /// fault plan for this stream when it delays or aborts it (nil: forward at once).
    func applyRoute(_ route: RouteSelectionBox, to stream: HTTP2RelayStream, request: inout HPACKHeaders, path: String) -> HTTPRouteOutcome.FaultPlan? {
        // Read in place through the box (a local copy of the behaviour retains all it holds).
        if let uri = route.selection.behaviour.rewrite?.uri {
            request.replacePseudoHeader(":path", with: HTTPRouteOutcome.rewrittenPath(path, rewrite: uri, matchedURI: route.selection.matchedURI))
        }
        if let authority = route.selection.behaviour.rewrite?.authority {
            request.replacePseudoHeader(":authority", with: authority)
            // Envoy's %REQ(:AUTHORITY)% is the rewritten host.
            stream.record.authority = authority
        }
        if !route.selection.behaviour.requestHeaders.isEmpty {
            request.apply(HeaderEdits(route.selection.behaviour.requestHeaders))
        }
        if !route.selection.behaviour.responseHeaders.isEmpty {
            stream.responseEdits = HeaderEdits(route.selection.behaviour.responseHeaders)
        }
        // Envoy's 0s timeout disables the route timeout.
        stream.routeTimeout = route.selection.behaviour.timeout.flatMap { $0 > .zero ? TimeAmount($0) : nil }
        guard let fault = route.selection.behaviour.fault else { return nil }
        let plan = HTTPRouteOutcome.plan(fault, delaySample: Double.random(in: 0..<100), abortSample: Double.random(in: 0..<100))
        return plan.isEmpty ? nil : plan
    }

    /// Applies a fault plan to a stream whose first frames wait in `.connecting`: Envoy's fault
    /// filter delays first (DI), then aborts (FI, "fault filter abort") or lets it through.
    func applyFault(_ plan: HTTPRouteOutcome.FaultPlan, to stream: HTTP2RelayStream, target: UpstreamTarget, decision: Decision, config: ActiveConfig) {
        guard let delay = plan.delay else {
            self.faultAbort(stream, status: plan.abortStatus ?? 503)
            return
        }
        stream.record.responseFlags.insert(.delayInjected)
        let bound = NIOLoopBound((relay: self, stream: stream), eventLoop: self.eventLoop)
        self.eventLoop.scheduleTask(in: TimeAmount(delay)) {
            let (relay, stream) = bound.value
            // The client may have reset the stream (or closed the connection) meanwhile.
            guard case .connecting = stream.phase, relay.streams[stream.downstreamID] === stream else { return }
            if let status = plan.abortStatus {
                relay.faultAbort(stream, status: status)
            } else {
                relay.forward(stream, to: target, decision: decision, config: config)
            }
        }
    }

    private func faultAbort(_ stream: HTTP2RelayStream, status: Int) {
        stream.phase = .answered
        self.respondLocally(stream, status: status, flag: .faultInjected, body: HTTPRouteOutcome.faultAbortBody)
    }

    /// Starts the route timeout once the stream is forwarded and its request has ended (Envoy
    /// counts the route timeout from the end of the downstream request).
    func armRouteTimeout(_ stream: HTTP2RelayStream) {
        guard let timeout = stream.routeTimeout, stream.routeTimer == nil, stream.requestEnded, !stream.responseStarted,
              case .forwarding = stream.phase
        else { return }
        stream.routeTimer = LoopTimers.on(self.eventLoop).schedule(at: .now() + timeout, stream)
    }

    /// The route timeout passed: before the response head, Envoy's 504 UT and the origin's
    /// stream reset; after it, nothing (as for HTTP/1).
    func routeTimedOut(_ stream: HTTP2RelayStream) {
        stream.routeTimer = nil
        guard !stream.responseStarted, case .forwarding(let upstream) = stream.phase, self.streams[stream.downstreamID] === stream else { return }
        self.runtime.logger.warning(
            "upstream request timeout",
            metadata: ["authority": "\(stream.record.authority ?? "-")", "after_ms": "\((stream.routeTimeout?.nanoseconds ?? 0) / 1_000_000)"])
        upstream.reset(stream, code: .cancel)
        self.upstreamDirty(upstream)
        stream.phase = .answered
        self.respondLocally(stream, status: 504, flag: .upstreamRequestTimeout, body: HTTP1LocalReply.upstreamTimeoutBody)
    }

    /// The route's `headers.response` on the response's head (not on 1xx heads or trailers).
    func editedResponse(_ payload: HTTP2Frame.FramePayload, of stream: HTTP2RelayStream) -> HTTP2Frame.FramePayload {
        guard let edits = stream.responseEdits, case .headers(var headers) = payload,
              let status = headers.headers.first(name: ":status"), !status.hasPrefix("1")
        else { return payload }
        stream.responseEdits = nil
        headers.headers.apply(edits)
        return .headers(headers)
    }
}

extension HTTP2RelayStream: LoopTimerHandler {
    func loopTimerFired() { self.downstream.routeTimedOut(self) }
}

extension HPACKHeaders {
    /// Replaces the value of pseudo-header `name` where it stands (pseudo-headers come first).
    mutating func replacePseudoHeader(_ name: String, with value: String) {
        var replaced = HPACKHeaders()
        replaced.reserveCapacity(self.count)
        var found = false
        for (field, old, indexing) in self {
            if field == name, !found {
                replaced.add(name: field, value: value, indexing: indexing)
                found = true
            } else {
                replaced.add(name: field, value: old, indexing: indexing)
            }
        }
        if !found { replaced.add(name: name, value: value) }
        self = replaced
    }

    /// A route's header operations, in Envoy's order: the fields `remove` and `set` name
    /// dropped, then `set` and `add` appended. HTTP/2 field names are lower case; a
    /// pseudo-header is never touched.
    mutating func apply(_ edits: HeaderEdits) {
        guard !edits.isEmpty else { return }
        var edited = HPACKHeaders()
        edited.reserveCapacity(self.count + edits.appended.count)
        for (name, value, indexing) in self where name.hasPrefix(":") || !edits.dropped.contains(name) {
            edited.add(name: name, value: value, indexing: indexing)
        }
        for pair in edits.appended where !pair.name.hasPrefix(":") {
            edited.add(name: pair.name.lowercased(), value: pair.value)
        }
        self = edited
    }
}
