extension RFC3339 {
    /// Reads an RFC 3339 timestamp back into epoch milliseconds: `2026-11-27T04:10:16.123Z`
    /// as Sluice and Envoy write `start_time`, with any number of fraction digits (or none),
    /// `t`/space for `T`, and `Z` or a `±HH:MM` offset. A date alone (`2026-11-27`) is its
    /// midnight UTC. Nil for anything else.
    ///
    /// Arithmetic, like the writer: a log holds a timestamp per line and a date formatter per
    /// line would cost more than the rest of the line's parsing.
    public static func epochMilliseconds(parsing text: some StringProtocol) -> Int64? {
        var copy = String(text)
        return copy.withUTF8 { epochMilliseconds(utf8: $0) }
    }

    static func epochMilliseconds(utf8 bytes: UnsafeBufferPointer<UInt8>) -> Int64? {
        var index = 0
        func digits(_ count: Int) -> Int? {
            guard index + count <= bytes.count else { return nil }
            var value = 0
            for byte in bytes[index..<index + count] {
                guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
                value = value * 10 + Int(byte - UInt8(ascii: "0"))
            }
            index += count
            return value
        }
        func expect(_ set: [UInt8]) -> Bool {
            guard index < bytes.count, set.contains(bytes[index]) else { return false }
            index += 1
            return true
        }
        guard let year = digits(4), expect([UInt8(ascii: "-")]), let month = digits(2), expect([UInt8(ascii: "-")]),
              let day = digits(2), (1...12).contains(month), (1...daysIn(month: month, year: year)).contains(day)
        else { return nil }
        let days = Int64(daysFromCivil(year: year, month: month, day: day))
        if index == bytes.count { return days * 86_400_000 }
        guard expect([UInt8(ascii: "T"), UInt8(ascii: "t"), UInt8(ascii: " ")]),
              let hour = digits(2), expect([UInt8(ascii: ":")]), let minute = digits(2), expect([UInt8(ascii: ":")]),
              let second = digits(2), hour < 24, minute < 60, second < 61
        else { return nil }
        var millisecond = 0
        if expect([UInt8(ascii: ".")]) {
            var scale = 100
            var count = 0
            while index < bytes.count, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") {
                millisecond += Int(bytes[index] - UInt8(ascii: "0")) * scale
                scale /= 10
                index += 1
                count += 1
            }
            guard count > 0 else { return nil }
        }
        var offsetMinutes = 0
        if expect([UInt8(ascii: "Z"), UInt8(ascii: "z")]) {
            // UTC
        } else if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") {
            let sign = bytes[index] == UInt8(ascii: "-") ? -1 : 1
            index += 1
            guard let offsetHours = digits(2), expect([UInt8(ascii: ":")]), let offsetMins = digits(2),
                  offsetHours < 24, offsetMins < 60 else { return nil }
            offsetMinutes = sign * (offsetHours * 60 + offsetMins)
        } else {
            return nil
        }
        guard index == bytes.count else { return nil }
        let secondOfDay = Int64(hour * 3600 + minute * 60 + min(second, 59) - offsetMinutes * 60)
        return (days * 86_400 + secondOfDay) * 1000 + Int64(millisecond)
    }

    /// Days from 1970-01-01 to a proleptic Gregorian date: Howard Hinnant's `days_from_civil`,
    /// the inverse of `civilFromDays`.
    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    private static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }
}
