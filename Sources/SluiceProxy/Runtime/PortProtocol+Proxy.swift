import SluiceCore

extension PortProtocol {
    /// Ports whose bytes we never sniff: declared TCP (or a protocol we do not parse).
    var isOpaqueTCP: Bool { !self.isHTTP && !self.isTLS }
}
