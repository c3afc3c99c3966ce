//! Countries as contacts write them, read into ISO 3166-1 alpha-2 codes: an alpha-2 or
//! alpha-3 code, or a name in one of the seeds' nine languages (French, English, Spanish,
//! German, Portuguese, Russian, Chinese, Hindi, Arabic), whatever its case and accents
//! (`FR`, `fra`, `France`, `allemagne`, `Deutschland`, `ESPAÑA`, `Германия`, `德国`).
//!
//! The codes and names come from the `keshvar` crate (ISO 3166-1 with the CLDR's
//! translations), read once into an index of folded names. A name two countries share
//! (once folded) names neither: it is refused rather than guessed. The ISO short and long
//! names and the nine languages' translations are read first; the crate's unofficial
//! names (older or colloquial forms, in any language) only where those do not answer.

use std::collections::HashMap;
use std::sync::OnceLock;

use unicode_normalization::UnicodeNormalization;

/// The languages whose country names are read (the seeds' nine, ISO 639-1).
const NAME_LANGUAGES: [&str; 9] = ["fr", "en", "es", "de", "pt", "ru", "zh", "hi", "ar"];

/// A country longer than this (in characters) is refused unread: no name is near it.
pub const MAX_COUNTRY_CHARS: usize = 100;

/// Names the crate does not hold that contacts commonly write, each with its code. The
/// crate has the ISO and CLDR names; these are the everyday forms beside them:
/// `UK` (ISO's exceptional reservation for the United Kingdom, whose code is GB), `EL`
/// (the European Union's code for Greece), `UAE`, and England, Scotland and Wales (parts
/// of GB, in the nine languages where they differ from English).
const ALIASES: [(&str, &str); 18] = [
    ("uk", "GB"),
    ("el", "GR"),
    ("uae", "AE"),
    ("u s a", "US"),
    ("england", "GB"),
    ("angleterre", "GB"),
    ("inglaterra", "GB"),
    ("scotland", "GB"),
    ("ecosse", "GB"),
    ("escocia", "GB"),
    ("schottland", "GB"),
    ("wales", "GB"),
    ("pays de galles", "GB"),
    ("gales", "GB"),
    ("pais de gales", "GB"),
    ("great britain", "GB"),
    ("grande bretagne", "GB"),
    ("holland", "NL"),
];

/// Why a country was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CountryError {
    #[error(
        "\"{0}\" is not a country: give its ISO 3166 code (FR, FRA) or its name in French, English, Spanish, German, Portuguese, Russian, Chinese, Hindi or Arabic"
    )]
    Unknown(String),
    #[error("is {0} characters long; a country's name is at most {MAX_COUNTRY_CHARS}")]
    TooLong(usize),
}

/// The folded form names are compared in: compatibility-decomposed (so `Ｆｒａｎｃｅ` is
/// `france`), accents dropped (the combining marks of Latin, Greek and Cyrillic letters,
/// U+0300–U+036F; other scripts' marks are part of their letters and stay), lower case,
/// punctuation and runs of spaces made one space, invisible joiners removed.
pub fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut space = false;
    for c in text.nfkd() {
        if ('\u{300}'..='\u{36f}').contains(&c) || matches!(c, '\u{200b}'..='\u{200d}' | '\u{feff}')
        {
            continue;
        }
        if c.is_whitespace()
            || c.is_ascii_punctuation()
            || ('\u{2010}'..='\u{205e}').contains(&c)
            || matches!(c, '«' | '»' | '·' | '、' | '，' | '。' | '（' | '）')
        {
            space = !out.is_empty();
            continue;
        }
        if space {
            out.push(' ');
            space = false;
        }
        out.extend(c.to_lowercase());
    }
    out
}

/// The codes and folded names, built once.
struct Index {
    /// Upper-case alpha-2 codes, each the value the others point at.
    alpha2: HashMap<String, &'static str>,
    /// Upper-case alpha-3 code → alpha-2.
    alpha3: HashMap<String, &'static str>,
    /// Folded name → alpha-2, ambiguous names left out.
    names: HashMap<String, &'static str>,
}

/// Adds names to a map, marking a name two countries share (`None`).
fn add(map: &mut HashMap<String, Option<&'static str>>, name: &str, code: &'static str) {
    let key = fold(name);
    if key.is_empty() {
        return;
    }
    map.entry(key)
        .and_modify(|seen| {
            if *seen != Some(code) {
                *seen = None;
            }
        })
        .or_insert(Some(code));
}

fn index() -> &'static Index {
    static INDEX: OnceLock<Index> = OnceLock::new();
    INDEX.get_or_init(|| {
        let mut alpha2 = HashMap::new();
        let mut alpha3 = HashMap::new();
        let mut official: HashMap<String, Option<&'static str>> = HashMap::new();
        let mut unofficial: HashMap<String, Option<&'static str>> = HashMap::new();
        for country in keshvar::CountryIterator::new() {
            // Leaked once per country (about 250 short strings), so codes are `'static`.
            let code: &'static str = String::leak(country.alpha2().to_string().to_uppercase());
            alpha2.insert(code.to_owned(), code);
            alpha3.insert(country.alpha3().to_string().to_uppercase(), code);
            add(&mut official, country.iso_short_name(), code);
            add(&mut official, country.iso_long_name(), code);
            // The nine languages and their regional forms (`zh_CN`, `zh_TW`, `pt_BR`).
            for (language, name) in country.translations() {
                let base = language.split(['_', '-']).next().unwrap_or_default();
                if NAME_LANGUAGES.contains(&base) {
                    add(&mut official, name, code);
                }
            }
            for name in country.unofficial_name_list() {
                add(&mut unofficial, name, code);
            }
        }
        let mut names: HashMap<String, &'static str> = HashMap::new();
        for (name, code) in unofficial
            .into_iter()
            .chain(official.iter().map(|(k, v)| (k.clone(), *v)))
        {
            // Official names are inserted last: they win over an unofficial one. An
            // ambiguous official name removes the entry altogether.
            match code {
                Some(code) => {
                    names.insert(name, code);
                }
                None => {
                    names.remove(&name);
                }
            }
        }
        for (alias, code) in ALIASES {
            if let Some(code) = alpha2.get(code).copied() {
                names.insert(alias.to_owned(), code);
            }
        }
        Index {
            alpha2,
            alpha3,
            names,
        }
    })
}

/// The ISO 3166-1 alpha-2 code (upper case) of a country written as a code or a name;
/// refused when it is none we know.
pub fn parse(text: &str) -> Result<&'static str, CountryError> {
    let length = text.chars().count();
    if length > MAX_COUNTRY_CHARS {
        return Err(CountryError::TooLong(length));
    }
    let trimmed = text.trim();
    let unknown = || CountryError::Unknown(trimmed.to_owned());
    let index = index();
    if trimmed.is_ascii() && trimmed.chars().all(|c| c.is_ascii_alphabetic()) {
        let upper = trimmed.to_ascii_uppercase();
        match upper.len() {
            // Two letters are a code, never a name.
            2 => {
                return index
                    .alpha2
                    .get(&upper)
                    .or_else(|| index.names.get(&upper.to_ascii_lowercase()))
                    .copied()
                    .ok_or_else(unknown);
            }
            3 => {
                if let Some(code) = index.alpha3.get(&upper) {
                    return Ok(code);
                }
            }
            _ => {}
        }
    }
    index.names.get(&fold(trimmed)).copied().ok_or_else(unknown)
}

/// Whether a code is one of ISO 3166-1's alpha-2 codes (upper case).
pub fn is_code(code: &str) -> bool {
    index().alpha2.contains_key(code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn codes_and_names_in_the_nine_languages_read_as_alpha_2() {
        for (text, code) in [
            ("FR", "FR"),
            ("fr", "FR"),
            (" de ", "DE"),
            ("FRA", "FR"),
            ("deu", "DE"),
            ("ESP", "ES"),
            ("France", "FR"),
            ("FRANCE", "FR"),
            ("Allemagne", "DE"),
            ("Deutschland", "DE"),
            ("Germany", "DE"),
            ("Espagne", "ES"),
            ("España", "ES"),
            ("espana", "ES"),
            ("ESPAÑA", "ES"),
            ("Alemania", "DE"),
            ("Alemanha", "DE"),
            ("Германия", "DE"),
            ("德国", "DE"),
            ("जर्मनी", "DE"),
            ("ألمانيا", "DE"),
            ("Brésil", "BR"),
            ("bresil", "BR"),
            ("Brasil", "BR"),
            ("États-Unis", "US"),
            ("etats unis", "US"),
            ("United States", "US"),
            ("Vereinigte Staaten", "US"),
            ("Estados Unidos", "US"),
            ("Россия", "RU"),
            ("中国", "CN"),
            ("भारत", "IN"),
            ("المغرب", "MA"),
            ("Maroc", "MA"),
            ("Côte d'Ivoire", "CI"),
            ("cote d ivoire", "CI"),
            ("Suisse", "CH"),
            ("Schweiz", "CH"),
            ("Royaume-Uni", "GB"),
            ("UK", "GB"),
            ("England", "GB"),
            ("Ｆｒａｎｃｅ", "FR"),
            ("Pays-Bas", "NL"),
            ("Франция", "FR"),
            ("法国", "FR"),
            ("फ़्रान्स", "FR"),
            ("فرنسا", "FR"),
            ("España", "ES"),
            ("Испания", "ES"),
            ("西班牙", "ES"),
            ("स्पेन", "ES"),
            ("إسبانيا", "ES"),
            ("Espanha", "ES"),
        ] {
            assert_eq!(parse(text), Ok(code), "{text}");
        }
    }

    #[test]
    fn what_is_no_country_is_refused_with_the_text() {
        // "Corée" is both Koreas: refused rather than guessed.
        for text in [
            "",
            "  ",
            "XX",
            "ZZZ",
            "Atlantis",
            "Frankreichh",
            "F R",
            "1234",
            "Corée",
        ] {
            assert_eq!(
                parse(text),
                Err(CountryError::Unknown(text.trim().to_owned())),
                "{text}"
            );
        }
        let long = "x".repeat(MAX_COUNTRY_CHARS + 1);
        assert_eq!(
            parse(&long),
            Err(CountryError::TooLong(MAX_COUNTRY_CHARS + 1))
        );
        assert!(
            parse("Atlantis")
                .unwrap_err()
                .to_string()
                .contains("\"Atlantis\" is not a country")
        );
    }

    #[test]
    fn folding_drops_case_accents_and_punctuation() {
        assert_eq!(fold("  Côte  d’Ivoire "), "cote d ivoire");
        assert_eq!(fold("ÉTATS-UNIS"), "etats unis");
        assert_eq!(fold("São Tomé-et-Príncipe"), "sao tome et principe");
        assert_eq!(fold("Ｇｅｒｍａｎｙ"), "germany");
    }

    #[test]
    fn every_code_of_the_index_is_known() {
        assert!(is_code("FR") && is_code("TW") && !is_code("XX") && !is_code("fr"));
        assert!(index().alpha2.len() >= 249);
        for code in index().names.values() {
            assert!(is_code(code), "{code}");
        }
    }

    proptest! {
        #[test]
        fn never_panics_and_answers_a_known_code_or_a_refusal(text in "\\PC{0,120}") {
            match parse(&text) {
                Ok(code) => prop_assert!(is_code(code)),
                Err(CountryError::Unknown(t)) => prop_assert_eq!(t, text.trim()),
                Err(CountryError::TooLong(n)) => prop_assert!(n > MAX_COUNTRY_CHARS),
            }
        }

        #[test]
        fn any_case_of_a_code_reads_the_same(code in "[a-zA-Z]{2,3}") {
            let upper = parse(&code.to_ascii_uppercase()).ok();
            prop_assert_eq!(parse(&code.to_ascii_lowercase()).ok(), upper);
        }
    }
}
