//! From an SMS to tokens: lower case, apostrophes and in-word hyphens and slashes dropped ("men's" →
//! "mens", "tune-up" → "tuneup", "a/c" → "ac"), everything else that is not a letter or digit a
//! separator; numbers with their clock, date and ordinal forms recognised ("3pm", "3:30", "6/12",
//! "12th", "#2"). Service names and aliases go through the same normalisation, so both sides agree.

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tok {
    Word(String),
    /// A bare number: "3", "11".
    Num(u32),
    /// A clock time: "3pm" (3, 0, Some(Pm)), "3:30" (3, 30, None), "15:00".
    Clock {
        hour: u32,
        minute: u32,
        meridiem: Option<Meridiem>,
    },
    /// "6/12": month and day.
    Slash {
        month: u32,
        day: u32,
    },
    /// "12th", "2nd".
    Ordinal(u32),
    /// "#2".
    Hash(u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Meridiem {
    Am,
    Pm,
}

impl Tok {
    pub fn word(&self) -> Option<&str> {
        match self {
            Tok::Word(w) => Some(w),
            _ => None,
        }
    }

    pub fn is(&self, word: &str) -> bool {
        self.word() == Some(word)
    }
}

/// Normalises a service name, alias or keyword into words.
pub fn normalise_phrase(text: &str) -> Vec<String> {
    tokenize(text)
        .into_iter()
        .map(|t| match t {
            Tok::Word(w) => w,
            Tok::Num(n) | Tok::Hash(n) | Tok::Ordinal(n) => n.to_string(),
            Tok::Clock { hour, minute, .. } => format!("{hour}{minute:02}"),
            Tok::Slash { month, day } => format!("{month}{day}"),
        })
        .collect()
}

pub fn tokenize(text: &str) -> Vec<Tok> {
    let lower = text
        .to_lowercase()
        .replace(['\u{2019}', '\u{2018}', '`'], "'")
        .replace("a.m.", "am")
        .replace("p.m.", "pm")
        .replace("a.m", "am")
        .replace("p.m", "pm");
    let chars: Vec<char> = lower.chars().collect();
    let mut toks = Vec::new();
    let mut chunk = String::new();
    let mut hash = false;
    let flush = |chunk: &mut String, hash: &mut bool, toks: &mut Vec<Tok>| {
        if !chunk.is_empty() {
            classify(chunk, *hash, toks);
            chunk.clear();
        }
        *hash = false;
    };
    for (i, &c) in chars.iter().enumerate() {
        let prev = if i > 0 { chars[i - 1] } else { ' ' };
        let next = chars.get(i + 1).copied().unwrap_or(' ');
        if c.is_alphanumeric() {
            chunk.push(c);
        } else if c == '\'' && prev.is_alphabetic() && next.is_alphabetic() {
            // "men's", "don't": joined.
        } else if (c == '-' || c == '/') && prev.is_alphabetic() && next.is_alphabetic() {
            // "tune-up", "a/c": joined.
        } else if (c == ':' || c == '/') && prev.is_ascii_digit() && next.is_ascii_digit() {
            chunk.push(c);
        } else if c == '#' && next.is_ascii_digit() {
            flush(&mut chunk, &mut hash, &mut toks);
            hash = true;
        } else {
            flush(&mut chunk, &mut hash, &mut toks);
        }
    }
    flush(&mut chunk, &mut hash, &mut toks);
    toks
}

fn classify(chunk: &str, hash: bool, toks: &mut Vec<Tok>) {
    let digits_end = chunk
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(chunk.len());
    if digits_end == 0 {
        toks.push(Tok::Word(chunk.to_string()));
        return;
    }
    let (num, rest) = chunk.split_at(digits_end);
    let Ok(n) = num.parse::<u32>() else {
        toks.push(Tok::Word(chunk.to_string()));
        return;
    };
    if rest.is_empty() {
        toks.push(if hash { Tok::Hash(n) } else { Tok::Num(n) });
        return;
    }
    let meridiem = |s: &str| match s {
        "am" | "a" => Some(Meridiem::Am),
        "pm" | "p" => Some(Meridiem::Pm),
        _ => None,
    };
    if let Some(m) = meridiem(rest) {
        toks.push(Tok::Clock {
            hour: n,
            minute: 0,
            meridiem: Some(m),
        });
        return;
    }
    if let Some(after) = rest.strip_prefix(':') {
        let mend = after
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(after.len());
        let (mins, tail) = after.split_at(mend);
        if mins.len() == 2 {
            if let Ok(minute) = mins.parse::<u32>() {
                match (tail, meridiem(tail)) {
                    ("", _) => {
                        return toks.push(Tok::Clock {
                            hour: n,
                            minute,
                            meridiem: None,
                        })
                    }
                    (_, Some(m)) => {
                        return toks.push(Tok::Clock {
                            hour: n,
                            minute,
                            meridiem: Some(m),
                        })
                    }
                    _ => {}
                }
            }
        }
    }
    if let Some(after) = rest.strip_prefix('/') {
        if let Some(day) = after.split('/').next().and_then(|d| d.parse::<u32>().ok()) {
            toks.push(Tok::Slash { month: n, day });
            return;
        }
    }
    if matches!(rest, "st" | "nd" | "rd" | "th") {
        toks.push(Tok::Ordinal(n));
        return;
    }
    // "2morrow" and the like.
    toks.push(Tok::Word(chunk.to_string()));
}

/// Optimal-string-alignment distance ≤ 1: one letter inserted, deleted, changed, or two swapped.
pub fn within_one_edit(a: &str, b: &str) -> bool {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    if a == b {
        return true;
    }
    let (la, lb) = (a.len(), b.len());
    if la.abs_diff(lb) > 1 {
        return false;
    }
    let prefix = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    if la == lb {
        // One substitution, or one adjacent swap.
        let rest_equal = |from: usize| a[from..] == b[from..];
        return rest_equal(prefix + 1)
            || (prefix + 1 < la
                && a[prefix] == b[prefix + 1]
                && a[prefix + 1] == b[prefix]
                && rest_equal(prefix + 2));
    }
    let (long, short) = if la > lb { (&a, &b) } else { (&b, &a) };
    long[prefix + 1..] == short[prefix..]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(s: &str) -> Tok {
        Tok::Word(s.into())
    }

    #[test]
    fn words_numbers_and_clock_forms() {
        assert_eq!(
            tokenize("Hi! Can I get a haircut tomorrow at 2?"),
            [
                w("hi"),
                w("can"),
                w("i"),
                w("get"),
                w("a"),
                w("haircut"),
                w("tomorrow"),
                w("at"),
                Tok::Num(2)
            ]
        );
        assert_eq!(
            tokenize("3pm")[0],
            Tok::Clock {
                hour: 3,
                minute: 0,
                meridiem: Some(Meridiem::Pm)
            }
        );
        assert_eq!(
            tokenize("at 3:30")[1],
            Tok::Clock {
                hour: 3,
                minute: 30,
                meridiem: None
            }
        );
        assert_eq!(
            tokenize("5:30PM")[0],
            Tok::Clock {
                hour: 5,
                minute: 30,
                meridiem: Some(Meridiem::Pm)
            }
        );
        assert_eq!(
            tokenize("15:00")[0],
            Tok::Clock {
                hour: 15,
                minute: 0,
                meridiem: None
            }
        );
        assert_eq!(tokenize("8 a.m.")[..2], [Tok::Num(8), w("am")]);
        assert_eq!(tokenize("on 6/12")[1], Tok::Slash { month: 6, day: 12 });
        assert_eq!(tokenize("the 12th")[1], Tok::Ordinal(12));
        assert_eq!(tokenize("#2"), [Tok::Hash(2)]);
    }

    #[test]
    fn in_word_punctuation_joins_and_other_punctuation_separates() {
        assert_eq!(normalise_phrase("men's cut"), ["mens", "cut"]);
        assert_eq!(normalise_phrase("Tune-Up"), ["tuneup"]);
        assert_eq!(normalise_phrase("a/c"), ["ac"]);
        assert_eq!(normalise_phrase("cut & beard"), ["cut", "beard"]);
        assert_eq!(normalise_phrase("what’s up?!"), ["whats", "up"]);
    }

    #[test]
    fn one_edit() {
        assert!(within_one_edit("haircut", "hiarcut")); // swap
        assert!(within_one_edit("haircut", "haicut")); // deletion
        assert!(within_one_edit("haircut", "hairrcut")); // insertion
        assert!(within_one_edit("haircut", "haorcut")); // substitution
        assert!(!within_one_edit("haircut", "hiarcit"));
        assert!(!within_one_edit("estimate", "estate"));
    }
}
