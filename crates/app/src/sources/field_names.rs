//! Field names as sources write them (CSV headers, webhook keys), mapped to ours.

use ee_store::contacts::FIELDS;

/// Maps a field name as sources write it to ours.
pub fn field_name(name: &str) -> Option<&'static str> {
    let key: String = name
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric())
        .collect();
    let mapped = match key.as_str() {
        "firstname" | "fname" | "prenom" | "prénom" | "givenname" | "first" => "first_name",
        "lastname" | "lname" | "nom" | "surname" | "familyname" | "last" => "last_name",
        "phone" | "telephone" | "téléphone" | "tel" | "mobile" | "phonenumber" => "phone",
        "language" | "lang" | "langue" | "locale" => "language",
        "country" | "pays" | "countrycode" => "country",
        "address" | "adresse" | "street" | "streetaddress" => "address",
        "city" | "ville" | "town" => "city",
        "category" | "categorie" | "catégorie" => "category",
        "company" | "societe" | "société" | "entreprise" | "organization" | "organisation" => {
            "company"
        }
        "timezone" | "tz" | "zone" | "fuseau" | "fuseauhoraire" => "time_zone",
        _ => return None,
    };
    FIELDS.iter().copied().find(|f| *f == mapped)
}

pub fn is_email_header(name: &str) -> bool {
    let key: String = name
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric())
        .collect();
    matches!(
        key.as_str(),
        "email" | "mail" | "emailaddress" | "courriel" | "adressemail" | "adresseemail"
    )
}

pub fn is_tags_header(name: &str) -> bool {
    matches!(
        name.trim().to_lowercase().as_str(),
        "tags" | "tag" | "étiquettes" | "etiquettes"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_aliases() {
        assert_eq!(field_name("First Name"), Some("first_name"));
        assert_eq!(field_name("firstName"), Some("first_name"));
        assert_eq!(field_name("Prénom"), Some("first_name"));
        assert_eq!(field_name("NOM"), Some("last_name"));
        assert_eq!(field_name("Téléphone"), Some("phone"));
        assert_eq!(field_name("favourite colour"), None);
        assert!(
            is_email_header("E-mail")
                && is_email_header("Email Address")
                && !is_email_header("name")
        );
    }
}
