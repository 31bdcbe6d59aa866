//! keepalived's number readers (`read_unsigned`, `read_int`, `read_decimal_unsigned` in
//! lib/parser.c): what they accept and what they reject, so that a value keepalived refuses
//! is refused here at the same line. Under `-t` keepalived never keeps a rejected value.

use super::Builder;
use crate::config::lexer::Token;

/// Decimal places keepalived keeps for times (`TIMER_HZ_DIGITS`: microseconds).
pub(super) const MICROS_DIGITS: u32 = 6;
pub(super) const MICROS: u64 = 1_000_000;

impl Builder<'_> {
    /// `read_unsigned`, reporting what keepalived reports at the token.
    pub(super) fn unsigned(&mut self, kw: &str, token: &Token, min: u64, max: u64) -> Option<u64> {
        read_unsigned(&token.text, min, max)
            .map_err(|problem| self.d.warn(&token.at, kw, problem))
            .ok()
    }

    /// `read_int`, reporting what keepalived reports at the token.
    pub(super) fn signed(&mut self, kw: &str, token: &Token, min: i64, max: i64) -> Option<i64> {
        read_int(&token.text, min, max)
            .map_err(|problem| self.d.warn(&token.at, kw, problem))
            .ok()
    }

    /// `read_decimal_unsigned` in microseconds, reporting what keepalived reports.
    pub(super) fn decimal_micros(
        &mut self,
        kw: &str,
        token: &Token,
        min: u64,
        max: u64,
    ) -> Option<u64> {
        let decimals = token.text.split_once('.').map_or(0, |(_, f)| f.len());
        if decimals > MICROS_DIGITS as usize {
            self.d.warn(
                &token.at,
                kw,
                format!(
                    "'{}' has more than {MICROS_DIGITS} decimal places; rounded",
                    token.text
                ),
            );
        }
        read_decimal_micros(&token.text, min, max)
            .map_err(|problem| self.d.warn(&token.at, kw, problem))
            .ok()
    }
}

/// `read_unsigned`: base 10, leading blanks skipped, no minus sign, at most `u32::MAX`.
pub(super) fn read_unsigned(text: &str, min: u64, max: u64) -> Result<u64, String> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('-') {
        return Err(format!("negative number '{text}'"));
    }
    match parse_c_unsigned(trimmed) {
        Err(Junk) => Err(format!("invalid number '{text}'")),
        Ok(Some(n)) if n <= u64::from(u32::MAX) && (min..=max).contains(&n) => Ok(n),
        Ok(Some(n)) if n <= u64::from(u32::MAX) => Err(format!("{n} outside {min}..{max}")),
        Ok(_) => Err(format!(
            "number '{text}' outside the unsigned integer range"
        )),
    }
}

/// `read_int`: base 10, an optional sign, within `i32`.
pub(super) fn read_int(text: &str, min: i64, max: i64) -> Result<i64, String> {
    let trimmed = text.trim_start();
    let (negative, digits) = match trimmed.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, trimmed.strip_prefix('+').unwrap_or(trimmed)),
    };
    let magnitude = parse_c_unsigned(digits).map_err(|Junk| format!("invalid number '{text}'"))?;
    let value = magnitude
        .and_then(|m| i64::try_from(m).ok())
        .map(|m| if negative { -m } else { m })
        .filter(|v| i32::try_from(*v).is_ok())
        .ok_or_else(|| format!("number '{text}' outside the integer range"))?;
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(format!("{value} outside {min}..{max}"))
    }
}

/// `read_decimal_unsigned` with microsecond resolution: `1.5` is 1_500_000. More than six
/// decimal places are rounded (keepalived reports that too, but keeps the value).
pub(super) fn read_decimal_micros(text: &str, min: u64, max: u64) -> Result<u64, String> {
    if text.starts_with('-') {
        return Err(format!("negative number '{text}'"));
    }
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let mut fraction = fraction.to_string();
    let mut round_up = false;
    if fraction.len() > MICROS_DIGITS as usize {
        round_up = fraction.as_bytes()[MICROS_DIGITS as usize] >= b'5';
        fraction.truncate(MICROS_DIGITS as usize);
    }
    while fraction.len() < MICROS_DIGITS as usize {
        fraction.push('0');
    }
    let value = match parse_c_unsigned(&format!("{whole}{fraction}")) {
        Err(Junk) => return Err(format!("invalid number '{text}'")),
        Ok(None) => {
            return Err(format!(
                "number '{text}' outside the unsigned decimal range"
            ))
        }
        Ok(Some(v)) => v + u64::from(round_up),
    };
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(format!(
            "{text} outside {}..{}",
            micros_text(min),
            micros_text(max)
        ))
    }
}

/// Seconds with the decimals needed: `0.01`, `255`, `0.000001`.
fn micros_text(micros: u64) -> String {
    let fraction = format!("{:06}", micros % MICROS);
    let fraction = fraction.trim_end_matches('0');
    if fraction.is_empty() {
        format!("{}", micros / MICROS)
    } else {
        format!("{}.{fraction}", micros / MICROS)
    }
}

/// Not a number at all (text after the digits).
struct Junk;

/// `strtoul`/`strtoull` in base 10 after the caller removed the sign: leading blanks and
/// one `+` are allowed, an empty string is 0 (as strtoul leaves it), any other text is
/// junk; `Ok(None)` is an overflow.
fn parse_c_unsigned(text: &str) -> Result<Option<u64>, Junk> {
    let text = text.trim_start();
    let digits = text.strip_prefix('+').unwrap_or(text);
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Junk);
    }
    if digits.is_empty() {
        return Ok(Some(0));
    }
    Ok(digits.parse::<u64>().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_unsigned_as_strtoul() {
        assert!(matches!(parse_c_unsigned("42"), Ok(Some(42))));
        assert!(matches!(parse_c_unsigned(" +7"), Ok(Some(7))));
        assert!(matches!(parse_c_unsigned(""), Ok(Some(0))));
        assert!(parse_c_unsigned("4x").is_err());
        assert!(parse_c_unsigned("0x10").is_err());
        assert!(matches!(
            parse_c_unsigned("99999999999999999999999"),
            Ok(None)
        ));
    }

    #[test]
    fn micros_are_printed_with_the_decimals_needed() {
        assert_eq!(micros_text(1), "0.000001");
        assert_eq!(micros_text(4_294_967_295), "4294.967295");
        assert_eq!(micros_text(10_000), "0.01");
        assert_eq!(micros_text(255 * MICROS), "255");
    }

    #[test]
    fn readers_accept_and_reject_as_keepalived() {
        assert_eq!(read_unsigned("255", 1, 255), Ok(255));
        assert_eq!(read_unsigned("0", 1, 255), Err("0 outside 1..255".into()));
        assert_eq!(
            read_unsigned("-1", 0, 9),
            Err("negative number '-1'".into())
        );
        assert_eq!(
            read_unsigned("1.5", 0, 9),
            Err("invalid number '1.5'".into())
        );
        assert_eq!(read_int("-253", -253, 253), Ok(-253));
        assert_eq!(
            read_int("300", -253, 253),
            Err("300 outside -253..253".into())
        );
        assert_eq!(read_decimal_micros("1.5", 1, u64::MAX), Ok(1_500_000));
        assert_eq!(read_decimal_micros("0.0000015", 0, u64::MAX), Ok(2));
        assert_eq!(
            read_decimal_micros("0", 1, 4_294_967_295),
            Err("0 outside 0.000001..4294.967295".into())
        );
        assert_eq!(
            read_decimal_micros("1s", 0, 9),
            Err("invalid number '1s'".into())
        );
    }
}
