/// The `nameserver` lines of a resolv.conf (resolv.conf(5)): where the DNS proxy forwards
/// what it does not answer itself. Pure: the caller reads the file.
public enum ResolvConf {
    /// The nameserver addresses, in order; lines that are not an IP literal are skipped.
    public static func nameservers(_ text: String) -> [IPAddress] {
        text.split(whereSeparator: \.isNewline).compactMap { line in
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard fields.count >= 2, fields[0] == "nameserver" else { return nil }
            return IPAddress(String(fields[1]))
        }
    }
}
