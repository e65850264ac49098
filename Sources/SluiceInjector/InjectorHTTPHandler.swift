import NIOCore
import NIOHTTP1
import SluiceInject

/// One connection's requests: collects a request's body (bounded), answers it, and keeps the
/// connection open when the client asked to.
final class InjectorHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let responder: AdmissionReviewResponder
    private let log: @Sendable (String) -> Void
    private var head: HTTPRequestHead?
    private var body = ByteBuffer()
    private var tooLarge = false

    init(responder: AdmissionReviewResponder, log: @escaping @Sendable (String) -> Void) {
        self.responder = responder
        self.log = log
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let requestHead):
            head = requestHead
            body.clear()
            tooLarge = false
        case .body(var chunk):
            if body.readableBytes + chunk.readableBytes > InjectorServer.maxBodyBytes {
                tooLarge = true
                body.clear()
            } else if !tooLarge {
                body.writeBuffer(&chunk)
            }
        case .end:
            guard let requestHead = head else { return }
            head = nil
            respond(to: requestHead, context: context)
        }
    }

    private func respond(to request: HTTPRequestHead, context: ChannelHandlerContext) {
        let path = request.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? request.uri
        let status: HTTPResponseStatus
        let text: String
        var contentType = "application/json"
        switch (request.method, path) {
        case (.POST, InjectorServer.injectPath) where tooLarge:
            (status, text) = (.payloadTooLarge, #"{"error":"request body over 4 MiB"}"#)
        case (.POST, InjectorServer.injectPath):
            let answer = responder.respond(to: String(buffer: body))
            status = HTTPResponseStatus(statusCode: answer.status)
            text = answer.body
            log("POST \(path) \(answer.status) \(answer.body.contains("\"patch\"") ? "injected" : answer.body.contains("\"allowed\":false") ? "refused" : "unchanged")")
        case (.GET, InjectorServer.readyPath):
            (status, text, contentType) = (.ok, "ready", "text/plain")
        default:
            (status, text, contentType) = (.notFound, "not found: POST AdmissionReviews to \(InjectorServer.injectPath)", "text/plain")
        }
        body.clear()
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: contentType)
        headers.add(name: "Content-Length", value: String(text.utf8.count))
        let keepAlive = request.isKeepAlive
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: text)))), promise: nil)
        if keepAlive {
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        } else {
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A client that fails the TLS handshake or speaks something else: nothing to answer.
        context.close(promise: nil)
    }
}
