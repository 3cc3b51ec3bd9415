"""The deliberate differences between vmm and QEMU that a comparison test allows, one per line of
its list file: "PATTERN  reason" ('#' starts a comment line); and the comparison's verdict."""


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


def report(problems, agreement):
    """The verdict of a comparison: prints the problems and returns 1, or prints `agreement`
    and returns 0."""
    if problems:
        print("vmm and QEMU disagree where no difference is listed:\n  " + "\n  ".join(problems))
        return 1
    print(agreement)
    return 0
