public import NIOCore

/// RFC 3339 timestamps in UTC with milliseconds (`2026-11-27T04:10:16.123Z`), as Envoy prints
/// `%START_TIME%`.
///
/// Computed arithmetically from epoch milliseconds (no calendar, no formatter, no locale): the
/// access log formats one per request, and Foundation's date formatters are slow and allocate.
public enum RFC3339 {
    /// Earliest instant RFC 3339 can write (0000-01-01T00:00:00.000Z); earlier inputs are clamped.
    public static let minEpochMilliseconds: Int64 = -62_167_219_200_000
    /// Latest instant RFC 3339 can write (9999-12-31T23:59:59.999Z); later inputs are clamped.
    public static let maxEpochMilliseconds: Int64 = 253_402_300_799_999

    /// Number of bytes one timestamp takes: `YYYY-MM-DDTHH:MM:SS.mmmZ`.
    public static let length = 24

    /// Broken-down UTC time for an instant.
    public struct Components: Equatable, Sendable {
        /// Proleptic Gregorian year, 0...9999.
        public var year: Int
        /// 1...12.
        public var month: Int
        /// 1...31.
        public var day: Int
        /// 0...23.
        public var hour: Int
        /// 0...59.
        public var minute: Int
        /// 0...59 (epoch time has no leap seconds).
        public var second: Int
        /// 0...999.
        public var millisecond: Int

        /// Creates components from their parts.
        public init(year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int, millisecond: Int) {
            self.year = year
            self.month = month
            self.day = day
            self.hour = hour
            self.minute = minute
            self.second = second
            self.millisecond = millisecond
        }
    }

    /// Splits epoch milliseconds into UTC calendar fields, clamped to years 0...9999.
    public static func components(epochMilliseconds: Int64) -> Components {
        let ms = min(max(epochMilliseconds, minEpochMilliseconds), maxEpochMilliseconds)
        // Floor division, so instants before 1970 land on the previous day, not the next.
        let msPerDay: Int64 = 86_400_000
        var days = ms / msPerDay
        var msOfDay = ms % msPerDay
        if msOfDay < 0 {
            msOfDay += msPerDay
            days -= 1
        }
        let (year, month, day) = civilFromDays(Int(days))
        let millisOfDay = Int(msOfDay)
        return Components(
            year: year,
            month: month,
            day: day,
            hour: millisOfDay / 3_600_000,
            minute: millisOfDay / 60_000 % 60,
            second: millisOfDay / 1000 % 60,
            millisecond: millisOfDay % 1000
        )
    }

    /// Year, month and day of the proleptic Gregorian calendar for days since 1970-01-01.
    ///
    /// Howard Hinnant's `civil_from_days`: shift the epoch to 0000-03-01 so that the leap day is
    /// the last day of a "year", then split into 400-year eras (146,097 days each), years of the
    /// era and days of the year. Exact for every day, no tables, no loops.
    static func civilFromDays(_ daysSinceEpoch: Int) -> (year: Int, month: Int, day: Int) {
        let z = daysSinceEpoch + 719_468  // days since 0000-03-01
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097  // 0...146096
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365  // 0...399
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)  // 0...365, from March 1
        let monthFromMarch = (5 * dayOfYear + 2) / 153  // 0...11
        let day = dayOfYear - (153 * monthFromMarch + 2) / 5 + 1
        let month = monthFromMarch < 10 ? monthFromMarch + 3 : monthFromMarch - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        return (year, month, day)
    }

    /// Appends the 24-byte timestamp for `epochMilliseconds` to `buffer`.
    public static func append(epochMilliseconds: Int64, to buffer: inout ByteBuffer) {
        buffer.writeBounded(length) { write(epochMilliseconds: epochMilliseconds, to: &$0) }
    }

    /// The date and time of day of one second, formatted: a log writes many lines a second,
    /// and the calendar arithmetic is the same for all of them (one per writer, not shared).
    public struct SecondCache: Sendable {
        /// Clamped epoch seconds the prefix is for.
        fileprivate var second = Int64.min
        /// `YYYY-MM-DDTHH:MM:SS.`: 20 bytes.
        fileprivate var prefix: (UInt64, UInt64, UInt32) = (0, 0, 0)

        public init() {}
    }

    /// Writes the 24-byte timestamp through a bounded writer.
    static func write(epochMilliseconds: Int64, to w: inout BoundedWriter) {
        var cache = SecondCache()
        write(epochMilliseconds: epochMilliseconds, to: &w, cache: &cache)
    }

    /// Writes the 24-byte timestamp, the part up to the second from `cache` when it holds
    /// that second (and into it when not).
    static func write(epochMilliseconds: Int64, to w: inout BoundedWriter, cache: inout SecondCache) {
        let ms = min(max(epochMilliseconds, minEpochMilliseconds), maxEpochMilliseconds)
        var second = ms / 1000
        var milli = ms % 1000
        if milli < 0 {
            milli += 1000
            second -= 1
        }
        if second != cache.second {
            let c = components(epochMilliseconds: second * 1000)
            withUnsafeMutableBytes(of: &cache.prefix) { raw in
                var prefix = BoundedWriter(raw)
                writeDateTime(c, to: &prefix)
            }
            cache.second = second
        }
        withUnsafeBytes(of: cache.prefix) { w.write(bytes: UnsafeRawBufferPointer(rebasing: $0[0..<20])) }
        w.writePadded(Int(milli), width: 3)
        w.write(UInt8(ascii: "Z"))
    }

    /// `YYYY-MM-DDTHH:MM:SS.` (20 bytes).
    private static func writeDateTime(_ c: Components, to w: inout BoundedWriter) {
        w.writePadded(c.year, width: 4)
        w.write(UInt8(ascii: "-"))
        w.writePadded(c.month, width: 2)
        w.write(UInt8(ascii: "-"))
        w.writePadded(c.day, width: 2)
        w.write(UInt8(ascii: "T"))
        w.writePadded(c.hour, width: 2)
        w.write(UInt8(ascii: ":"))
        w.writePadded(c.minute, width: 2)
        w.write(UInt8(ascii: ":"))
        w.writePadded(c.second, width: 2)
        w.write(UInt8(ascii: "."))
    }

    /// The timestamp for `epochMilliseconds` as a String.
    public static func string(epochMilliseconds: Int64) -> String {
        var buffer = ByteBufferAllocator().buffer(capacity: length)
        append(epochMilliseconds: epochMilliseconds, to: &buffer)
        return String(buffer: buffer)
    }
}
