//! Timestamps: milliseconds since the Unix epoch in storage, RFC 3339 on the wire.

use ::time::format_description::well_known::Rfc3339;
use ::time::OffsetDateTime;

/// Now, in milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// RFC 3339 (`2020-03-24T10:40:37.123Z`) for a millisecond timestamp.
pub fn rfc3339(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// "March 24, 2020 at 10:40:37 AM UTC": how the console shows a moment before the browser
/// renders it in the admin's own time zone.
pub fn human_utc(ms: i64) -> String {
    let format = ::time::macros::format_description!(
        "[month repr:long] [day padding:none], [year] at [hour repr:12 padding:none]:[minute]:[second] [period] UTC"
    );
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_default()
}

/// A moment as the console shows it (see [`model::Moment`]).
pub fn moment(ms: i64) -> model::Moment {
    model::Moment {
        at_ms: ms,
        utc_text: human_utc(ms),
        rfc3339: rfc3339(ms),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_like_the_guide() {
        assert_eq!(
            super::human_utc(1_585_046_437_000),
            "March 24, 2020 at 10:40:37 AM UTC"
        );
        assert_eq!(
            super::human_utc(1_585_089_637_000),
            "March 24, 2020 at 10:40:37 PM UTC"
        );
    }

    #[test]
    fn formats_rfc3339() {
        assert_eq!(super::rfc3339(1_585_046_437_000), "2020-03-24T10:40:37Z");
        assert_eq!(super::rfc3339(1_585_046_437_120), "2020-03-24T10:40:37.12Z");
    }
}
