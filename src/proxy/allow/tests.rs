use super::*;
use Route::*;

#[track_caller]
fn allowed(method: &str, target: &str, want: Route) {
    assert_eq!(decide(method, target), Ok(want), "{method} {target}");
}

#[track_caller]
fn refused(method: &str, target: &str, why: Refusal) {
    assert_eq!(decide(method, target), Err(why), "{method} {target}");
}

const ID: &str = "4f2a9c1b7e3d4f2a9c1b7e3d4f2a9c1b7e3d4f2a9c1b7e3d4f2a9c1b7e3d4f2a";

#[test]
fn every_call_vigild_makes_is_allowed_with_and_without_a_version() {
    let calls = [
        ("GET", "/version", Version),
        ("GET", "/info", Info),
        ("GET", "/events", Events),
        (
            "GET",
            "/events?filters=%7B%22type%22%3A%5B%22container%22%5D%7D",
            Events,
        ),
        ("GET", "/containers/json?all=true", ContainerList),
        (
            "GET",
            "/containers/json?all=true&filters=%7B%22name%22%3A%5B%22web%22%5D%7D",
            ContainerList,
        ),
        ("GET", "/containers/arasul-web/json", ContainerInspect),
        ("POST", "/containers/arasul-web/start", ContainerStart),
        ("POST", "/containers/arasul_db.1/stop?t=10", ContainerStop),
        ("POST", "/containers/ollama/restart?t=10", ContainerRestart),
        ("POST", "/images/load?quiet=true", ImageLoad),
        ("GET", "/images/vigil-test/busybox:1/json", ImageInspect),
        ("GET", "/images/localhost:5000/a/b:2.0/json", ImageInspect),
        ("GET", "/images/sha256:0123abcd/json", ImageInspect),
        ("GET", "/images/x/y@sha256:0123abcd/json", ImageInspect),
        (
            "POST",
            "/images/sha256:0123abcd/tag?repo=vigil-test%2Fapp&tag=1",
            ImageTag,
        ),
        (
            "DELETE",
            "/images/vigil-test/app:1?force=false&noprune=true",
            ImageRemove,
        ),
        (
            "POST",
            "/images/prune?filters=%7B%22dangling%22%3A%5B%22true%22%5D%7D",
            ImagePrune,
        ),
        ("POST", "/build/prune", BuildCachePrune),
    ];
    for (m, t, r) in calls {
        allowed(m, t, r);
        allowed(m, &format!("/v1.41{t}"), r);
        allowed(m, &format!("/v1.43{t}"), r);
    }
    allowed("GET", &format!("/containers/{ID}/json"), ContainerInspect);
    allowed(
        "POST",
        &format!("/containers/{ID}/restart"),
        ContainerRestart,
    );
}

#[test]
fn every_other_call_is_refused() {
    for (m, t) in [
        ("POST", "/containers/create"),
        ("POST", "/containers/create?name=x"),
        ("POST", "/containers/web/exec"),
        ("POST", "/exec/abc/start"),
        ("GET", "/exec/abc/json"),
        ("POST", "/build"),
        ("POST", "/build?t=x"),
        ("POST", "/commit?container=web"),
        ("POST", "/images/x/push"),
        ("POST", "/images/vigil-test/x:1/push"),
        ("POST", "/images/create?fromImage=x"),
        ("GET", "/images/json"),
        ("GET", "/images/x/get"),
        ("GET", "/images/get"),
        ("GET", "/images/search?term=x"),
        ("GET", "/plugins"),
        ("POST", "/plugins/pull"),
        ("GET", "/volumes"),
        ("POST", "/volumes/create"),
        ("DELETE", "/volumes/data"),
        ("DELETE", "/containers/web"),
        ("POST", "/containers/web/attach"),
        ("GET", "/containers/web/attach/ws"),
        ("POST", "/containers/web/kill"),
        ("POST", "/containers/web/update"),
        ("POST", "/containers/web/rename?name=y"),
        ("POST", "/containers/web/wait"),
        ("GET", "/containers/web/logs"),
        ("GET", "/containers/web/archive?path=/"),
        ("PUT", "/containers/web/archive?path=/"),
        ("GET", "/containers/web/export"),
        ("POST", "/containers/prune"),
        ("GET", "/_ping"),
        ("GET", "/networks"),
        ("POST", "/networks/create"),
        ("POST", "/session"),
        ("POST", "/swarm/init"),
        ("GET", "/secrets"),
        ("POST", "/auth"),
        ("GET", "/system/df"),
        ("POST", "/grpc"),
        ("GET", "/version/x"),
        ("POST", "/version"),
        ("DELETE", "/containers/json"),
        ("GET", "/containers/web/start"),
        ("POST", "/containers/web/json"),
        ("POST", "/images/x/json"),
        ("GET", "/images/x/tag"),
        ("DELETE", "/build/prune"),
        ("POST", "/images"),
        ("POST", "/images/load/x"),
    ] {
        let why = if m == "PUT" {
            Refusal::Method
        } else {
            Refusal::NotAllowed
        };
        refused(m, t, why);
        refused(m, &format!("/v1.43{t}"), why);
    }
}

#[test]
fn methods_are_matched_exactly() {
    for m in [
        "get", "Get", "gET", "post", "Post", "delete", "GET ", " GET", "HEAD", "PUT", "PATCH",
        "OPTIONS", "CONNECT", "TRACE", "",
    ] {
        refused(m, "/containers/json", Refusal::Method);
        refused(m, "/containers/web/exec", Refusal::Method);
    }
}

#[test]
fn encoded_paths_are_refused_never_decoded() {
    for t in [
        "/containers/web/%65xec",
        "/containers/web/%65%78%65%63",
        "/containers/%2e%2e/web/exec",
        "/containers/%2E%2E/web/exec",
        "/containers/json%2F..%2Fweb%2Fexec",
        "/containers/web%2Fexec",
        "/containers/web/restart%00",
        "/containers/web/restart%",
        "/containers/web/start%20",
        "/%63ontainers/web/start",
        "/v1.43%2Fcontainers/web/start",
        "/images/x%2Fpush/tag",
        "/images/x%2f..%2fy/json",
        "/build%2Fprune",
    ] {
        for m in ["GET", "POST", "DELETE"] {
            refused(m, t, Refusal::PathCharacter);
        }
    }
}

#[test]
fn dot_segments_and_empty_segments_are_refused() {
    for t in [
        "/containers/json/../web/exec",
        "/containers/web/../web/restart",
        "/containers/./web/restart",
        "/containers/web/./restart",
        "/./containers/web/restart",
        "/../containers/web/restart",
        "/v1.43/../containers/create",
        "/v1.43/./containers/web/restart",
        "/containers/web/restart/..",
        "/containers/web/restart/.",
        "/images/../build/json",
        "/images/a/../b/json",
        "//containers/create",
        "//containers/web/restart",
        "/containers//web/restart",
        "/containers/web//restart",
        "/v1.43//containers/web/restart",
        "/containers/web/restart/",
        "/containers/json/",
        "/version/",
        "/",
    ] {
        for m in ["GET", "POST", "DELETE"] {
            refused(m, t, Refusal::PathSegment);
        }
    }
}

#[test]
fn queries_never_change_the_route() {
    // The path ends at the first `?`: what follows is the query, whatever it looks like.
    for t in [
        "/containers/web/exec?x=/json",
        "/containers/web/exec?/restart",
        "/containers/create?x=/containers/web/start",
        "/build?/prune",
        "/images/x/push?/tag",
    ] {
        refused("POST", t, Refusal::NotAllowed);
        refused("GET", t, Refusal::NotAllowed);
    }
    allowed("POST", "/containers/web/restart?x=/exec", ContainerRestart);
    allowed("POST", "/containers/web/restart?", ContainerRestart);
    allowed("GET", "/containers/json?a=1?b=2", ContainerList);
    // A query must still be one a URI can carry.
    for t in [
        "/containers/json?all=%",
        "/containers/json?all=%g1",
        "/containers/json?all=%1",
        "/containers/json?a b",
        "/containers/json?a#b",
        "/containers/json?{\"a\":1}",
        "/containers/json?a\\b",
        "/containers/json?a\u{e9}",
    ] {
        refused("GET", t, Refusal::Query);
    }
}

#[test]
fn odd_characters_in_the_path_are_refused() {
    for t in [
        "/containers/web/restart#frag",
        "/containers/web\\exec",
        "/containers/web;x/restart",
        "/containers/web/restart;x",
        "/containers/we b/restart",
        "/containers/web/restart\t",
        "/containers/web/restart\r\n",
        "/containers/w\u{e9}b/restart",
        "/containers/web+x/restart",
        "/containers/~web/restart",
        "/containers/web*/restart",
        "/containers/web/restart&",
    ] {
        refused("POST", t, Refusal::PathCharacter);
    }
}

#[test]
fn only_origin_form_targets() {
    for t in [
        "http://docker/containers/json",
        "unix:///var/run/docker.sock/containers/json",
        "docker:2375",
        "*",
        "",
        "containers/json",
        "?/containers/json",
    ] {
        refused("GET", t, Refusal::NotOriginForm);
    }
    let long = format!("/containers/json?all={}", "1".repeat(MAX_TARGET_LEN));
    refused("GET", &long, Refusal::TooLong);
}

#[test]
fn version_prefixes_are_exactly_v_n_dot_m_and_only_one() {
    for v in ["v1.41", "v1.43", "v1.5", "v2.0", "v10.100"] {
        allowed("GET", &format!("/{v}/containers/json"), ContainerList);
    }
    for v in [
        "v1", "v1.", "v.41", "v1.41.1", "V1.41", "v1..41", "v1.4a", "1.41", "v100.1", "v1.1000",
        "vv1.41",
    ] {
        refused("GET", &format!("/{v}/containers/json"), Refusal::NotAllowed);
    }
    refused("GET", "/v1.41/v1.41/containers/json", Refusal::NotAllowed);
    refused("GET", "/v1.41", Refusal::NotAllowed);
}

#[test]
fn names_and_references_are_docker_shaped() {
    for n in ["-web", ".web", "_web", ":web", "web:1", "a@b"] {
        refused(
            "POST",
            &format!("/containers/{n}/restart"),
            Refusal::NotAllowed,
        );
    }
    let long = "a".repeat(MAX_NAME_LEN + 1);
    refused(
        "POST",
        &format!("/containers/{long}/restart"),
        Refusal::NotAllowed,
    );
    allowed(
        "POST",
        &format!("/containers/{}/restart", &long[1..]),
        ContainerRestart,
    );
    for r in ["-x", "x/-y", "x/:1", "x/@sha256:00"] {
        refused("GET", &format!("/images/{r}/json"), Refusal::NotAllowed);
        refused("DELETE", &format!("/images/{r}"), Refusal::NotAllowed);
    }
    let long = vec!["a"; MAX_REFERENCE_LEN / 2 + 1].join("/");
    refused("GET", &format!("/images/{long}/json"), Refusal::NotAllowed);
}

#[test]
fn every_refusal_has_words() {
    for r in [
        Refusal::Method,
        Refusal::NotOriginForm,
        Refusal::TooLong,
        Refusal::PathCharacter,
        Refusal::PathSegment,
        Refusal::Query,
        Refusal::NotAllowed,
    ] {
        assert!(!r.describe().is_empty());
    }
}
