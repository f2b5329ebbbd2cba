#!/usr/bin/env python3
"""Checks the deployment files that no cluster here runs (`make test` calls it; needs the test venv).

    scripts/check-deploy.py kubernetes       strict schema validation of pipelines/deploy/kubernetes/*.yaml
                                             for Kubernetes 1.29 and 1.33, and the merge Job's wait for
                                             every worker (its scripts run here against a fake emopipe)
    scripts/check-deploy.py containerfile BINARY
                                             the Containerfile installs the Debian package of every
                                             shared library `ldd BINARY` reports, copies the Swift
                                             runtime, and the Kubernetes image is what `make image` tags

Prints one line per check; exit status 0 when all hold, 1 otherwise (each failure named).
"""
import argparse
import glob
import os
import re
import stat
import subprocess
import sys
import tempfile
import time

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KUBERNETES = os.path.join(ROOT, "pipelines", "deploy", "kubernetes")
CONTAINERFILE = os.path.join(ROOT, "Containerfile")
VERSIONS = ["1.29", "1.33"]


class Checks:
    def __init__(self):
        self.failures = []

    def expect(self, ok, what):
        print(("ok      " if ok else "FAILED  ") + what)
        if not ok:
            self.failures.append(what)
        return ok


def documents():
    """(file name, document) for every YAML document of the Kubernetes folder."""
    found = []
    for path in sorted(glob.glob(os.path.join(KUBERNETES, "*.yaml"))):
        with open(path) as f:
            found += [(os.path.basename(path), d) for d in yaml.safe_load_all(f) if d is not None]
    return found


def named(docs, kind, name):
    matches = [d for _, d in docs if d.get("kind") == kind and d.get("metadata", {}).get("name") == name]
    if len(matches) != 1:
        raise SystemExit(f"expected one {kind} named {name} in {KUBERNETES}, found {len(matches)}")
    return matches[0]


def script(container):
    """A container's shell script: `command: [/bin/sh, -c]` and its one argument."""
    assert container.get("command") == ["/bin/sh", "-c"], f"{container['name']}: not a /bin/sh -c container"
    return container["args"][0]


def run_script(text, work, env, timeout):
    """Runs a container's script with /work moved to a temporary folder; None when still running at timeout."""
    body = re.sub(r"/work\b", work, text)
    process = subprocess.Popen(["/bin/sh", "-c", body], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        process.wait(timeout=timeout)
        return process.returncode
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return None


def fake_emopipe(folder):
    """An `emopipe` on PATH that logs its arguments and exits $FAKE_STATUS_<verb> (default 0)."""
    path = os.path.join(folder, "emopipe")
    with open(path, "w") as f:
        f.write('#!/bin/sh\necho "$@" >> "$FAKE_LOG"\neval "exit \\${FAKE_STATUS_$1:-0}"\n')
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR)


def check_kubernetes(checks):
    import kubernetes_validate
    docs = documents()
    checks.expect(len(docs) >= 3, f"{len(docs)} documents in {os.path.relpath(KUBERNETES, ROOT)}")
    for version in VERSIONS:
        for file, doc in docs:
            what = f"{file}: {doc.get('kind')} {doc.get('metadata', {}).get('name')} against Kubernetes {version} (strict)"
            try:
                kubernetes_validate.validate(doc, version, strict=True)
                checks.expect(True, what)
            except kubernetes_validate.ValidationError as error:
                checks.expect(False, f"{what}: {error.message} at {'.'.join(str(p) for p in error.path)}")

    manifest = yaml.safe_load(named(docs, "ConfigMap", "emopipe-manifest")["data"]["manifest.yaml"])
    workers_job = named(docs, "Job", "emopipe-workers")
    merge_job = named(docs, "Job", "emopipe-merge-train")
    n = manifest.get("workers")
    spec = workers_job["spec"]
    checks.expect(spec.get("completionMode") == "Indexed" and spec.get("completions") == n,
                  f"workers Job: Indexed, completions {spec.get('completions')} = the manifest's workers {n}")
    worker = spec["template"]["spec"]["containers"][0]
    merge_spec = merge_job["spec"]["template"]["spec"]
    inits = merge_spec.get("initContainers", [])
    if not checks.expect(len(inits) == 1, "merge Job: one init container that waits for the workers"):
        return
    claim = lambda pod: {v["name"]: v.get("persistentVolumeClaim", {}).get("claimName") for v in pod["volumes"]}
    work_claim = claim(spec["template"]["spec"])["work"]
    mounts = {m["mountPath"]: m["name"] for m in inits[0]["volumeMounts"]}
    checks.expect(claim(merge_spec).get(mounts.get("/work")) == work_claim,
                  f"the init container sees the workers' /work volume (claim {work_claim})")

    with tempfile.TemporaryDirectory() as tmp:
        bin_dir, work = os.path.join(tmp, "bin"), os.path.join(tmp, "work")
        os.makedirs(bin_dir)
        fake_emopipe(bin_dir)
        log = os.path.join(tmp, "emopipe.log")
        env = dict(os.environ, PATH=bin_dir + ":" + os.environ.get("PATH", "/usr/bin:/bin"), FAKE_LOG=log)
        marker = lambda i: os.path.join(work, "workers", f"{i}-of-{n}.done")

        # A worker writes its marker only when its share finished (0, or 3: some sources failed).
        for status, wanted in [(0, True), (3, True), (1, False), (75, False)]:
            os.makedirs(os.path.dirname(marker(1)), exist_ok=True)
            open(marker(1), "w").close()  # one left by an earlier round
            code = run_script(script(worker), work, dict(env, JOB_COMPLETION_INDEX="1", FAKE_STATUS_run=str(status)), 30)
            checks.expect(os.path.exists(marker(1)) == wanted and code == (0 if wanted else status),
                          f"worker exiting {status}: marker {'written' if wanted else 'absent'}, pod exits {code}")
        for i in range(n):
            os.remove(marker(i)) if os.path.exists(marker(i)) else None

        # The init container waits while any index lacks its marker, and ends once all have one.
        for missing in range(n):
            for i in range(n):
                if i != missing:
                    open(marker(i), "w").close()
                elif os.path.exists(marker(i)):
                    os.remove(marker(i))
            code = run_script(script(inits[0]), work, env, 1.5)
            checks.expect(code is None, f"init container still waiting without worker {missing}'s marker")
        open(marker(n - 1), "w").close()
        started = time.monotonic()
        code = run_script(script(inits[0]), work, env, 30)
        checks.expect(code == 0 and time.monotonic() - started < 5, f"init container ends (exit {code}) once all {n} markers exist")

        # The merge container keeps the markers when the merge fails, consumes them when it succeeds.
        merge = merge_spec["containers"][0]
        code = run_script(script(merge), work, dict(env, FAKE_STATUS_merge="1"), 30)
        kept = all(os.path.exists(marker(i)) for i in range(n))
        checks.expect(code == 1 and kept, f"a failed merge exits {code} and keeps the markers")
        # A failed run keeps them too: the retried pod must not wait for markers that will never come.
        code = run_script(script(merge), work, dict(env, FAKE_STATUS_run="1"), 30)
        kept = all(os.path.exists(marker(i)) for i in range(n))
        checks.expect(code == 1 and kept, f"a failed run exits {code} and keeps the markers")
        for status in [0, 3]:   # 3: some sources failed, recorded in provenance: the round is done
            for i in range(n):
                open(marker(i), "w").close()
            open(log, "w").close()
            code = run_script(script(merge), work, dict(env, FAKE_STATUS_run=str(status)), 30)
            calls = open(log).read().split("\n")
            gone = not any(os.path.exists(marker(i)) for i in range(n))
            checks.expect(code == 0 and gone and calls[0].startswith("merge ") and calls[1].startswith("run "),
                          f"a good merge, then a run exiting {status}: the markers go, the pod exits {code}")
        checks.expect(isinstance(merge_job["spec"].get("activeDeadlineSeconds"), int),
                      "merge Job: activeDeadlineSeconds, so a worker index that never finishes ends the Job")


def containerfile_packages(text):
    """The packages the Containerfile's `apt-get install` line names (continuation lines joined)."""
    joined = re.sub(r"\\\n", " ", text)
    names = set()
    for line in joined.split("\n"):
        if "apt-get install" in line:
            after = line.split("apt-get install", 1)[1].split("&&")[0]
            names |= {w for w in after.split() if not w.startswith("-")}
    return names


def path_spellings(library):
    """A library's path, its real path, and their merged-/usr twins (dpkg records one of them)."""
    spellings = {library, os.path.realpath(library)}
    for path in list(spellings):
        if path.startswith("/usr/lib/"):
            spellings.add(path[len("/usr"):])
        elif path.startswith("/lib/"):
            spellings.add("/usr" + path)
    return spellings


def owning_packages(libraries):
    """{library: Debian package owning it} in one dpkg-query call (one call per file takes minutes)."""
    spellings = {library: path_spellings(library) for library in libraries}
    every = sorted(set().union(*spellings.values())) if spellings else []
    out = subprocess.run(["dpkg-query", "-S"] + every, capture_output=True, text=True).stdout
    owner = {}
    for line in out.splitlines():
        package, _, path = line.partition(": ")
        owner[path.strip()] = package.split(":")[0].split(",")[0].strip()
    return {library: next((owner[p] for p in sorted(paths) if p in owner), None) for library, paths in spellings.items()}


def dependency_closure(packages):
    """The packages apt installs for `packages`: each one's Pre-Depends and Depends, recursively, as
    this machine's dpkg database records them (the first installed alternative of each `a | b`)."""
    out = subprocess.run(["dpkg-query", "-W", "-f=${Package}\t${Pre-Depends}, ${Depends}\n"],
                         capture_output=True, text=True, check=True).stdout
    depends = {}
    for line in out.splitlines():
        name, _, fields = line.partition("\t")
        depends[name] = [[a.split()[0].split(":")[0] for a in d.split("|") if a.strip()] for d in fields.split(",") if d.strip()]
    found, todo = set(), list(packages)
    while todo:
        name = todo.pop()
        if name in found:
            continue
        found.add(name)
        for alternatives in depends.get(name, []):
            installed = [a for a in alternatives if a in depends]
            todo += installed[:1]
    return found


def check_containerfile(checks, binary):
    text = open(CONTAINERFILE).read()
    listed = containerfile_packages(text)
    checks.expect(len(listed) > 0, f"Containerfile installs {len(listed)} packages")
    checks.expect(not any(p.endswith("-dev") for p in listed), "no -dev package in the image")
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    libraries = re.findall(r"=>\s*(/\S+)", out)
    checks.expect(len(libraries) > 0 and "not found" not in out, f"ldd {os.path.basename(binary)}: {len(libraries)} libraries, all found")
    swift = sorted({os.path.basename(p) for p in libraries if "/swift/" in p})
    closure = dependency_closure(listed)
    uncovered = []
    owners = owning_packages(sorted(set(libraries) - {p for p in libraries if "/swift/" in p}))
    for library, package in sorted(owners.items()):
        if package not in closure:
            uncovered.append(f"{os.path.basename(library)} ({package or 'no Debian package'})")
    checks.expect(not uncovered, f"every Debian library ldd names is installed by the Containerfile's packages or "
                                 f"their dependencies ({len(closure)} packages){': missing ' + ', '.join(uncovered) if uncovered else ''}")
    if swift:
        # The Swift runtime is no Debian package: `make image` copies the libraries ldd names into
        # the build context's swift-runtime/ and the Containerfile copies that folder.
        checks.expect(re.search(r"^COPY\s+swift-runtime/\s+/usr/lib/swift/linux/", text, re.M) is not None,
                      f"Containerfile copies the Swift runtime ({len(swift)} libraries) to /usr/lib/swift/linux")
        checks.expect(re.search(r"/usr/lib/swift/linux\s*>\s*/etc/ld\.so\.conf\.d/\S+\s*&&\s*ldconfig", text) is not None,
                      "the Swift runtime folder is on the loader's path (ld.so.conf.d, ldconfig)")
    checks.expect(re.search(r"^FROM\s+localhost/emopipe-base:bookworm", text, re.M) is not None,
                  "built on the Debian 12 base that `make image` imports")
    user = re.findall(r"^USER\s+(\S+)", text, re.M)
    checks.expect(bool(user) and user[-1] not in ("root", "0"), f"runs as a non-root user ({user[-1] if user else 'none'})")

    makefile = open(os.path.join(ROOT, "Makefile")).read()
    tag = re.search(r"^IMAGE\s*\?=\s*(\S+)", makefile, re.M)
    checks.expect(tag is not None, "the Makefile names the image `make image` tags")
    if tag:
        images = set()
        for _, doc in documents():
            pod = doc.get("spec", {}).get("template", {}).get("spec", {})
            images |= {c["image"] for c in pod.get("containers", []) + pod.get("initContainers", [])}
        checks.expect(images == {tag.group(1)}, f"every Kubernetes container runs {tag.group(1)}: {sorted(images)}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    sub.add_parser("kubernetes")
    container = sub.add_parser("containerfile")
    container.add_argument("binary")
    args = parser.parse_args()
    checks = Checks()
    if args.what == "kubernetes":
        check_kubernetes(checks)
    else:
        check_containerfile(checks, args.binary)
    print(f"{len(checks.failures)} failed")
    return 1 if checks.failures else 0


if __name__ == "__main__":
    sys.exit(main())
