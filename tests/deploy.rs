//! The deploy files agree with the code they deploy.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

fn read(rel: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)).unwrap()
}

#[test]
fn the_kubernetes_calendar_is_the_built_in_calendar() {
    // kustomize only reads files under the kustomization, so the base keeps
    // a copy; it must be the calendar the binary has built in.
    assert!(
        read("k8s/base/calendar.json") == kefu_sla::calendar::CHINA_DEFAULT_JSON,
        "k8s/base/calendar.json differs from libs/sla/data/cn.json; copy it again"
    );
    let kustomization = read("k8s/base/kustomization.yaml");
    assert!(!kustomization.contains(".."), "the base reads files outside itself:\n{kustomization}");
}

#[test]
fn overlays_read_no_file_outside_themselves() {
    // Plain kustomize (and Flux, Argo CD) refuse files outside a
    // kustomization; only other kustomizations may be referenced upwards.
    for overlay in ["dev", "prod"] {
        let k = read(&format!("k8s/overlays/{overlay}/kustomization.yaml"));
        for line in k.lines().filter(|l| l.contains("..")) {
            let target = line.trim().trim_start_matches("- ");
            assert!(
                target == "../../base" || target.starts_with("../../components/"),
                "k8s/overlays/{overlay} reads {target} from outside itself"
            );
        }
    }
    assert!(
        read("k8s/overlays/dev/init-databases.sql") == read("deploy/compose/init-databases.sql"),
        "k8s/overlays/dev/init-databases.sql differs from deploy/compose/init-databases.sql; copy it again"
    );
}

#[test]
fn every_module_is_deployed_in_compose_and_kubernetes() {
    let compose = read("docker-compose.yml");
    let base = read("k8s/base/kustomization.yaml");
    for m in kefu_suite::MODULES {
        let name = m.name();
        assert!(
            compose.contains(&format!("command: [\"serve\", \"{name}\"]")),
            "docker-compose.yml does not run {name}"
        );
        assert!(base.contains(&format!("- {name}.yaml")), "k8s/base does not deploy {name}");
        assert!(
            read("k8s/base/migrate-job.yaml").contains(&kefu_kit::module::database_env(name)),
            "the migrate Job has no database for {name}"
        );
    }
}
