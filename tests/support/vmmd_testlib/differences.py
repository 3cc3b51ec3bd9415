"""The deliberate differences between vmm and QEMU that a comparison test allows, one per line of
its list file: "PATTERN  reason" ('#' starts a comment line)."""


def load_differences(path):
    """{pattern: reason} from a differences file."""
    allowed = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                key, _, reason = line.partition(" ")
                allowed[key] = reason.strip()
    return allowed
