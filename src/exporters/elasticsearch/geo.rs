//! Geo points in `otel` mode: `geo.location.lat` and `geo.location.lon` double attributes (or
//! `<prefix>.geo.location.lat` / `.lon`, as `client.geo.location.lat`) are written as one
//! `geo.location: [lon, lat]` attribute, which Elasticsearch's OTel templates map as a
//! `geo_point`, so Kibana's maps can place it. A coordinate without its partner is written back
//! as it came. This is the Collector's rule, and Elasticsearch's own OTLP endpoint's.

use crate::codec::write_json_str;

use super::wire_json::write_f64;

const LAT: &str = "geo.location.lat";
const LON: &str = "geo.location.lon";

/// The prefix (`""`, or `client.` for `client.geo.location.lat`) and whether it is the latitude,
/// when `key` names a coordinate.
pub fn coordinate(key: &str) -> Option<(&str, bool)> {
    for (name, lat) in [(LAT, true), (LON, false)] {
        if key == name {
            return Some(("", lat));
        }
        if let Some(prefix) = key.strip_suffix(name)
            && prefix.ends_with('.')
        {
            return Some((prefix, lat));
        }
    }
    None
}

/// The coordinates of one object's attributes, gathered while its other attributes are written.
#[derive(Default)]
pub struct Points<'a> {
    /// Per prefix, in order of first appearance: latitude and longitude.
    found: Vec<(&'a str, Option<f64>, Option<f64>)>,
}

impl<'a> Points<'a> {
    /// Keeps `key`'s value if `key` names a coordinate and the value is a double (only doubles
    /// are merged, as the Collector does); returns whether it did.
    pub fn take(&mut self, key: &'a str, value: Option<f64>) -> bool {
        let (Some(v), Some((prefix, lat))) = (value, coordinate(key)) else {
            return false;
        };
        let slot = match self.found.iter().position(|(p, ..)| *p == prefix) {
            Some(i) => &mut self.found[i],
            None => {
                self.found.push((prefix, None, None));
                self.found.last_mut().expect("just pushed")
            }
        };
        if lat {
            slot.1 = Some(v);
        } else {
            slot.2 = Some(v);
        }
        true
    }

    /// Writes what was kept as object members, each preceded by a comma unless `first`.
    pub fn write(&self, out: &mut Vec<u8>, mut first: bool) {
        let mut member = |out: &mut Vec<u8>, prefix: &str, name: &str| {
            if !first {
                out.push(b',');
            }
            first = false;
            let mut key = String::with_capacity(prefix.len() + name.len());
            key.push_str(prefix);
            key.push_str(name);
            write_json_str(out, key.as_bytes());
            out.push(b':');
        };
        for &(prefix, lat, lon) in &self.found {
            match (lat, lon) {
                (Some(lat), Some(lon)) => {
                    member(out, prefix, "geo.location");
                    out.push(b'[');
                    write_f64(out, lon);
                    out.push(b',');
                    write_f64(out, lat);
                    out.push(b']');
                }
                (lat, lon) => {
                    if let Some(lat) = lat {
                        member(out, prefix, LAT);
                        write_f64(out, lat);
                    }
                    if let Some(lon) = lon {
                        member(out, prefix, LON);
                        write_f64(out, lon);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_merge_into_lon_lat_and_lone_coordinates_stay() {
        let mut p = Points::default();
        assert!(p.take("geo.location.lat", Some(52.5)));
        assert!(p.take("client.geo.location.lon", Some(2.35)));
        assert!(p.take("geo.location.lon", Some(13.4)));
        assert!(
            !p.take("geo.location.lat", None),
            "not a double: written as it is"
        );
        assert!(!p.take("mygeo.location.lat", Some(1.0)), "not a prefix");
        let mut out = b"{".to_vec();
        p.write(&mut out, true);
        out.push(b'}');
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"geo.location":[13.4,52.5],"client.geo.location.lon":2.35}"#
        );
    }
}
