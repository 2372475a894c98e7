//! SMS encoding limits. A text in the GSM-7 alphabet costs 1 septet a character (2 for `^{}\[~]|€`)
//! and fits 160 in one segment, 153 a segment when split; anything else goes out as UCS-2: 70, then
//! 67 a segment. Every text textback sends is made GSM-7 where the meaning allows (typographic quotes,
//! dashes and ellipses become their ASCII forms) and kept to at most two segments.

/// The GSM 03.38 basic character set.
const BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// The extension table: two septets each.
const EXTENDED: &str = "^{}\\[~]|€\u{000C}";

pub const MAX_SEGMENTS: usize = 2;

fn septets(c: char) -> Option<usize> {
    if BASIC.contains(c) {
        Some(1)
    } else if EXTENDED.contains(c) {
        Some(2)
    } else {
        None
    }
}

/// Replaces typographic characters with GSM-7 equivalents.
pub fn to_gsm(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\u{2018}' | '\u{2019}' | '\u{201B}' | '\u{2032}' => out.push('\''),
            '\u{201C}' | '\u{201D}' | '\u{201F}' | '\u{2033}' => out.push('"'),
            '\u{2013}' | '\u{2014}' | '\u{2212}' => out.push('-'),
            '\u{2026}' => out.push_str("..."),
            '\u{00A0}' | '\u{2009}' | '\u{202F}' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Encoding and segment count of a text.
pub fn segments(text: &str) -> (bool, usize) {
    let gsm: Option<usize> = text.chars().map(septets).sum();
    match gsm {
        Some(n) if n <= 160 => (true, 1),
        Some(n) => (true, n.div_ceil(153)),
        None => {
            let units: usize = text.chars().map(char::len_utf16).sum();
            (false, if units <= 70 { 1 } else { units.div_ceil(67) })
        }
    }
}

/// The text as it will be sent: GSM-7 where possible, cut at a word to at most two segments.
pub fn fit(text: &str) -> String {
    let text = to_gsm(text);
    if segments(&text).1 <= MAX_SEGMENTS {
        return text;
    }
    let mut cut = String::new();
    for word in text.split(' ') {
        let candidate = if cut.is_empty() {
            word.to_string()
        } else {
            format!("{cut} {word}")
        };
        if segments(&format!("{candidate}...")).1 > MAX_SEGMENTS {
            break;
        }
        cut = candidate;
    }
    cut.push_str("...");
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_segments_like_carriers() {
        assert_eq!(segments(&"a".repeat(160)), (true, 1));
        assert_eq!(segments(&"a".repeat(161)), (true, 2));
        assert_eq!(segments(&"a".repeat(306)), (true, 2));
        assert_eq!(segments(&"a".repeat(307)), (true, 3));
        // Extension characters cost two septets.
        assert_eq!(segments(&"{".repeat(80)), (true, 1));
        assert_eq!(segments(&"{".repeat(81)), (true, 2));
        // One emoji makes the whole text UCS-2.
        assert_eq!(segments(&format!("{}✂", "a".repeat(69))), (false, 1));
        assert_eq!(segments(&format!("{}✂", "a".repeat(70))), (false, 2));
    }

    #[test]
    fn typographic_characters_become_gsm() {
        let t = to_gsm("You\u{2019}re booked \u{2014} see you\u{2026}");
        assert_eq!(t, "You're booked - see you...");
        assert!(segments(&t).0);
    }

    #[test]
    fn long_texts_are_cut_at_a_word_to_two_segments() {
        let long = "word ".repeat(100);
        let fitted = fit(&long);
        assert_eq!(segments(&fitted).1, 2);
        assert!(fitted.ends_with("word..."), "{fitted}");
        let short = "Hi, this is Fade & Co. Reply STOP to opt out.";
        assert_eq!(fit(short), short);
    }
}
