//! RFC 3339 date-times as they appear in filters.

/// Milliseconds since the Unix epoch of an RFC 3339 date-time (`2020-03-24T10:40:37.5Z`,
/// `2020-03-24T12:40:37+02:00`).
pub fn parse_rfc3339_ms(text: &str) -> Option<i64> {
    let t = ::time::OffsetDateTime::parse(
        text.trim(),
        &::time::format_description::well_known::Rfc3339,
    )
    .ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses() {
        assert_eq!(
            super::parse_rfc3339_ms("2020-03-24T10:40:37Z"),
            Some(1_585_046_437_000)
        );
        assert_eq!(
            super::parse_rfc3339_ms("2020-03-24T12:40:37.25+02:00"),
            Some(1_585_046_437_250)
        );
        assert_eq!(super::parse_rfc3339_ms("2020-03-24"), None);
    }
}
