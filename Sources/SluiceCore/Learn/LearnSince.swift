/// `sluice learn --since T`: the earliest `start_time` to learn from.
public enum LearnSince {
    /// Epoch milliseconds for `text`: an RFC 3339 time (`2026-12-01T08:00:00Z`), a date
    /// (`2026-12-01`, midnight UTC), or an age before `now` (`90m`, `24h`, `7d`, `1h30m`).
    /// Nil when it is none of these.
    public static func parse(_ text: String, now: Int64) -> Int64? {
        if let time = RFC3339.epochMilliseconds(parsing: text) { return time }
        var age: Duration?
        if text.hasSuffix("d"), let days = Int64(text.dropLast()), days >= 0, days < 100_000 {
            age = .seconds(days * 86_400)
        } else {
            age = DurationText.parse(text)
        }
        guard let age else { return nil }
        let (seconds, attoseconds) = age.components
        return now - seconds * 1000 - attoseconds / 1_000_000_000_000_000
    }
}
