#!/usr/bin/env python3
"""libvirt's own tools on vmmd's domain XML (no daemon, no KVM: libvirt's test driver).

For every definition shape in DATA/shapes/*.json:
  export -> virt-xml-validate -> virsh -c test:///default define --validate + dumpxml -> import,
and the imported definition must equal the original. For every libvirt-written document in
DATA/imports/*.xml (virt-install output, virsh dumpxml output): it validates, imports to
DATA/imports/NAME.json, and survives the test driver's define + dumpxml the same way.
Usage: libvirt_xml_roundtrip.py LIBVIRT_XML_TOOL DATA_DIR. Exit 77 (skip) without libvirt's
tools, except under CI=true where that fails.
"""
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile

TOOL, DATA = sys.argv[1], sys.argv[2]
failures = []


def run(*args, stdin=None):
    p = subprocess.run(args, input=stdin, capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def tool(*args):
    rc, out, err = run(TOOL, *args)
    if rc != 0:
        raise RuntimeError(f"libvirt_xml_tool {' '.join(args)}: {err.strip()}")
    return out


def libvirt_round_trip(xml_path, name, tmp):
    """virt-xml-validate, then define and dump in one test-driver connection; the dumped XML."""
    rc, out, err = run("virt-xml-validate", xml_path, "domain")
    if rc != 0:
        raise RuntimeError(f"virt-xml-validate: {out}{err}")
    # The test driver lives inside one virsh process: define and dumpxml in the same invocation.
    rc, out, err = run("virsh", "-q", "-c", "test:///default", f"define --validate {xml_path}; dumpxml {name}")
    if rc != 0:
        raise RuntimeError(f"virsh define --validate/dumpxml: {err.strip()}")
    start = out.find("<domain")
    if start < 0:
        raise RuntimeError(f"virsh printed no domain: {out}")
    dumped = os.path.join(tmp, name + ".dumped.xml")
    with open(dumped, "w") as f:
        f.write(out[start:])
    return dumped


def check_shape(shape, tmp):
    base = os.path.basename(shape)[:-5]
    canonical = os.path.join(tmp, base + ".json")
    with open(canonical, "w") as f:
        f.write(tool("canonical", shape))  # generated uuid and MACs fixed once
    original = open(canonical).read()
    exported = os.path.join(tmp, base + ".xml")
    with open(exported, "w") as f:
        f.write(tool("export", canonical, "/usr/bin/vmm"))
    if tool("import", exported) != original:
        raise RuntimeError("import(export) differs from the definition")
    name = json.loads(original)["name"]
    dumped = libvirt_round_trip(exported, name, tmp)
    again = tool("import", dumped)
    if again != original:
        raise RuntimeError(f"after libvirt's define + dumpxml:\n  {again.strip()}\nwas\n  {original.strip()}")


def check_import(document, tmp):
    expected = open(document[:-4] + ".json").read()
    imported = tool("import", document)
    if imported != expected:
        raise RuntimeError(f"imports as\n  {imported.strip()}\nexpected\n  {expected.strip()}")
    name = json.loads(expected)["name"]
    dumped = libvirt_round_trip(document, name, tmp)
    if tool("import", dumped) != expected:
        raise RuntimeError("differs after libvirt's define + dumpxml")


def main():
    missing = [t for t in ("virsh", "virt-xml-validate") if shutil.which(t) is None]
    if missing:
        print(f"SKIP: {', '.join(missing)} not installed (libvirt-clients, scripts/install-deps.sh)")
        return 1 if os.environ.get("CI") == "true" else 77
    shapes = sorted(glob.glob(os.path.join(DATA, "shapes", "*.json")))
    imports = sorted(glob.glob(os.path.join(DATA, "imports", "*.xml")))
    if not shapes or not imports:
        print(f"no shapes or imports under {DATA}")
        return 1
    with tempfile.TemporaryDirectory(prefix="vmmd-libvirt-xml-") as tmp:
        for kind, paths, check in (("shape", shapes, check_shape), ("import", imports, check_import)):
            for path in paths:
                try:
                    check(path, tmp)
                    print(f"ok   {kind} {os.path.basename(path)}")
                except Exception as e:  # noqa: BLE001 - every failure is reported, then counted
                    failures.append(path)
                    print(f"FAIL {kind} {os.path.basename(path)}: {e}")
    print(f"{len(shapes) + len(imports) - len(failures)} of {len(shapes) + len(imports)} passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
