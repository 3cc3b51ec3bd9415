"""What the Python tests and benchmarks share: one QMP client (qmp), one temporary-directory
helper (tempdir), process and wait helpers (process), the rule for tests that need something a
host may lack (kvm_gate), and the list of deliberate differences two runs may show (differences).

Every script finds this package with one line relative to its own file:
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
(as many ".." as its folder is deep below tests/).
"""
