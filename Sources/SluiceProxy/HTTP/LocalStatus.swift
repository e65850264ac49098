/// The answers the proxy makes itself.
enum LocalStatus {
    case badRequest, forbidden, notFound, requestTimeout, requestHeaderFieldsTooLarge
    case badGateway, serviceUnavailable, gatewayTimeout

    var code: Int {
        switch self {
        case .badRequest: return 400
        case .forbidden: return 403
        case .notFound: return 404
        case .requestTimeout: return 408
        case .requestHeaderFieldsTooLarge: return 431
        case .badGateway: return 502
        case .serviceUnavailable: return 503
        case .gatewayTimeout: return 504
        }
    }

    var reason: String {
        switch self {
        case .badRequest: return "Bad Request"
        case .forbidden: return "Forbidden"
        case .notFound: return "Not Found"
        case .requestTimeout: return "Request Timeout"
        case .requestHeaderFieldsTooLarge: return "Request Header Fields Too Large"
        case .badGateway: return "Bad Gateway"
        case .serviceUnavailable: return "Service Unavailable"
        case .gatewayTimeout: return "Gateway Timeout"
        }
    }
}
