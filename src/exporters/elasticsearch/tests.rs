use super::*;

fn errors(yaml: &str) -> Vec<String> {
    crate::registry::build_errors(build, "exporters", "elasticsearch", yaml)
}

#[test]
fn the_documented_settings_build() {
    assert!(errors("{endpoints: ['http://es:9200']}").is_empty());
    assert!(
        errors(
            "{endpoint: 'https://es:9200/prefix', user: u, password: p, \
             mapping: {mode: ecs}, flush: {bytes: 1MiB, interval: 5s}, num_workers: 2, \
             retry: {max_retries: 3, retry_on_status: [429]}, \
             dead_letter: {index: dlq}, logs_index: app, pipeline: p}"
        )
        .is_empty()
    );
}

#[test]
fn bad_settings_are_reported_with_their_paths() {
    assert_eq!(
        errors("{}"),
        ["exporters.elasticsearch.endpoints: required: at least one Elasticsearch URL"]
    );
    assert_eq!(
        errors("{endpoints: ['es:9200']}"),
        ["exporters.elasticsearch.endpoints: \"es:9200\" is not an http:// or https:// URL"]
    );
    assert_eq!(
        errors("{endpoint: 'http://es:9200', user: u}"),
        ["exporters.elasticsearch.user: user and password go together"]
    );
    assert_eq!(
        errors("{endpoint: 'http://es:9200', user: u, password: p, api_key: k}"),
        ["exporters.elasticsearch.api_key: choose one of user/password, api_key and bearer_token"]
    );
    assert_eq!(
        errors("{endpoint: 'http://es:9200', compression: zstd}"),
        ["exporters.elasticsearch.compression: Elasticsearch takes gzip or none"]
    );
    assert_eq!(
        errors("{endpoint: 'http://es:9200', dead_letter: {}}"),
        ["exporters.elasticsearch.dead_letter: set exactly one of index and file"]
    );
    assert_eq!(
        errors("{endpoint: 'http://es:9200', mapping: {mode: flat}}").len(),
        1
    );
    assert_eq!(
        errors("{endpoint: 'http://es:9200', retry: {retry_on_status: [4290]}}"),
        ["exporters.elasticsearch.retry.retry_on_status: 4290 is not an HTTP status"]
    );
}

#[test]
fn secrets_never_appear_in_config_errors() {
    let got = errors("{endpoint: 'ftp://elastic:s3cret@es:9200'}").join("\n");
    assert!(!got.contains("s3cret"), "{got}");
    assert!(got.contains("ftp://***@es:9200"), "{got}");
    let got = errors("{endpoint: 'http://es:9200', api_key: \"s3cret\\n\"}").join("\n");
    assert!(!got.contains("s3cret"), "{got}");
}

#[test]
fn api_keys_and_bearer_tokens_become_sensitive_authorization_headers() {
    let header = |yaml: &str| {
        let cfg: Config = serde_yaml_ng::from_str(yaml).unwrap();
        let mut errors = Vec::new();
        let auth = prepare("x", &cfg, &mut errors).authorization.unwrap();
        assert!(errors.is_empty() && auth.is_sensitive());
        auth.to_str().unwrap().to_string()
    };
    assert_eq!(
        header(
            "{endpoint: 'http://es:9200', api_key: 'VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw=='}"
        ),
        "ApiKey VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw=="
    );
    assert_eq!(
        header("{endpoint: 'http://es:9200', bearer_token: abc.def}"),
        "Bearer abc.def"
    );
}

#[test]
fn credentials_in_the_url_become_a_sensitive_header() {
    let cfg: Config =
        serde_yaml_ng::from_str("{endpoint: 'http://elastic:p%40ss@es:9200'}").unwrap();
    let mut errors = Vec::new();
    let p = prepare("x", &cfg, &mut errors);
    assert!(errors.is_empty());
    assert_eq!(p.urls[0].as_str(), "http://es:9200/");
    let auth = p.authorization.unwrap();
    assert!(auth.is_sensitive());
    // base64("elastic:p@ss")
    assert_eq!(auth.to_str().unwrap(), "Basic ZWxhc3RpYzpwQHNz");
    assert!(!format!("{auth:?}").contains("ZWxhc3RpYzpwQHNz"));
}
