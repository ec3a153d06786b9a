//! The built-in city table: the committed `data/cities.tsv` (GeoNames cities,
//! CC BY 4.0) embedded in the binary, looked up by name with an optional
//! `,CC` country suffix, as OpenWeatherMap's `q=London,GB` allows.

use std::collections::HashMap;

const CITIES_TSV: &str = include_str!("../data/cities.tsv");

/// The longest city query accepted, in bytes.
pub const MAX_QUERY_LEN: usize = 128;

/// One city.
#[derive(Debug, Clone, PartialEq)]
pub struct City {
    /// Its GeoNames name.
    pub name: String,
    /// ISO 3166 alpha-2 country code.
    pub country: String,
    /// Latitude, degrees north.
    pub lat: f64,
    /// Longitude, degrees east.
    pub lon: f64,
    /// Population.
    pub population: u64,
}

/// Cities indexed by folded name; each key lists its cities most populous
/// first.
#[derive(Debug, Clone)]
pub struct Cities {
    all: Vec<City>,
    by_key: HashMap<String, Vec<usize>>,
}

/// Why a query found no city.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    /// The query is empty, too long or has control characters.
    #[error("a city is 1-128 characters, optionally followed by ,CC (country code)")]
    Invalid,
    /// No city of that name (in that country).
    #[error("unknown city")]
    Unknown,
}

impl Cities {
    /// The embedded table.
    pub fn builtin() -> Self {
        Self::parse(CITIES_TSV)
    }

    /// Parses `name, country, lat, lon, population` TSV lines; `#` comments,
    /// the header and malformed lines are skipped.
    pub fn parse(text: &str) -> Self {
        let mut all: Vec<City> = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.starts_with("name\t"))
            .filter_map(|l| {
                let mut f = l.split('\t');
                let city = City {
                    name: f.next()?.trim().to_string(),
                    country: f.next()?.trim().to_ascii_uppercase(),
                    lat: f.next()?.trim().parse().ok()?,
                    lon: f.next()?.trim().parse().ok()?,
                    population: f.next()?.trim().parse().ok()?,
                };
                let sane = !city.name.is_empty()
                    && city.country.len() == 2
                    && (-90.0..=90.0).contains(&city.lat)
                    && (-180.0..=180.0).contains(&city.lon);
                sane.then_some(city)
            })
            .collect();
        all.sort_by_key(|c| std::cmp::Reverse(c.population));
        let mut by_key: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, c) in all.iter().enumerate() {
            by_key.entry(fold(&c.name)).or_default().push(i);
        }
        Self { all, by_key }
    }

    /// How many cities the table holds.
    pub fn len(&self) -> usize {
        self.all.len()
    }

    /// True when the table is empty.
    pub fn is_empty(&self) -> bool {
        self.all.is_empty()
    }

    /// Finds `query` (`Paris`, `paris,fr`, `Sao Paulo`): the most populous
    /// city of that name, in the given country when one is given.
    pub fn find(&self, query: &str) -> Result<&City, LookupError> {
        let q = query.trim();
        if q.is_empty() || q.len() > MAX_QUERY_LEN || q.chars().any(char::is_control) {
            return Err(LookupError::Invalid);
        }
        let (name, country) = match q.rsplit_once(',') {
            Some((n, c)) if c.trim().len() == 2 => (n.trim(), Some(c.trim().to_ascii_uppercase())),
            _ => (q, None),
        };
        self.by_key
            .get(&fold(name))
            .into_iter()
            .flatten()
            .map(|&i| &self.all[i])
            .find(|c| country.as_deref().is_none_or(|cc| cc == c.country))
            .ok_or(LookupError::Unknown)
    }
}

/// Lower-cases and strips the common Latin diacritics, so `Sao Paulo`,
/// `zurich` and `MÜNCHEN` find their cities; spaces and dashes are kept.
pub fn fold(s: &str) -> String {
    s.chars()
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' => 'a',
            'ç' | 'ć' | 'č' => 'c',
            'ď' | 'đ' => 'd',
            'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ė' | 'ę' | 'ě' => 'e',
            'ğ' => 'g',
            'ì' | 'í' | 'î' | 'ï' | 'ī' | 'ı' | 'į' => 'i',
            'ł' | 'ľ' => 'l',
            'ñ' | 'ń' | 'ň' => 'n',
            'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ő' => 'o',
            'ř' => 'r',
            'ś' | 'š' | 'ş' | 'ș' => 's',
            'ť' | 'ţ' | 'ț' => 't',
            'ù' | 'ú' | 'û' | 'ü' | 'ū' | 'ů' | 'ű' => 'u',
            'ý' | 'ÿ' => 'y',
            'ź' | 'ż' | 'ž' => 'z',
            other => other,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_table_has_over_1000_cities_with_countries() {
        let c = Cities::builtin();
        assert!(c.len() >= 1000, "only {}", c.len());
        assert_eq!(c.find("London").unwrap().country, "GB");
        assert_eq!(c.find("london,ca").unwrap().country, "CA");
        assert_eq!(c.find("Paris").unwrap().country, "FR");
        assert_eq!(c.find("Sao Paulo").unwrap().name, "São Paulo");
        assert_eq!(c.find("seattle").unwrap().country, "US");
    }

    #[test]
    fn unknown_and_invalid_queries() {
        let c = Cities::builtin();
        assert_eq!(c.find("Atlantis"), Err(LookupError::Unknown));
        assert_eq!(c.find("Paris,JP"), Err(LookupError::Unknown));
        assert_eq!(c.find("  "), Err(LookupError::Invalid));
        assert_eq!(c.find(&"x".repeat(200)), Err(LookupError::Invalid));
        assert_eq!(c.find("a\u{0}b"), Err(LookupError::Invalid));
    }

    #[test]
    fn parse_prefers_the_most_populous_and_skips_bad_lines() {
        let c = Cities::parse(
            "# x\nname\tcountry\tlat\tlon\tpopulation\n\
             Springfield\tUS\t39.8\t-89.6\t100\n\
             Springfield\tUS\t42.1\t-72.6\t200\n\
             Bad\tUSA\t1\t1\t1\nWorse\tUS\t95\t0\t1\nshort\tUS\n",
        );
        assert_eq!(c.len(), 2);
        assert_eq!(c.find("springfield").unwrap().population, 200);
    }
}
