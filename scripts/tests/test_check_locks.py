from scripts.check_locks import lock_problems

LOCK = """\
django==5.2.19 \\
    --hash=sha256:aaaa \\
    --hash=sha256:bbbb
    # via -r requirements.in
sqlparse==0.5.3 \\
    --hash=sha256:cccc
    # via django
"""


def write(tmp_path, source: str, lock: str):
    (tmp_path / "r.in").write_text(source)
    (tmp_path / "r.txt").write_text(lock)
    return {"source": tmp_path / "r.in", "lock": tmp_path / "r.txt"}


def test_a_lock_that_matches_its_pins_with_hashes_passes(tmp_path):
    assert lock_problems(**write(tmp_path, "# pins\nDjango==5.2.19\n", LOCK)) == []


def test_a_pin_changed_in_the_in_file_but_not_locked_fails(tmp_path):
    [problem] = lock_problems(**write(tmp_path, "Django==5.2.20\n", LOCK))

    assert "django is 5.2.19, r.in pins 5.2.20" in problem


def test_a_new_pin_not_in_the_lock_fails(tmp_path):
    [problem] = lock_problems(**write(tmp_path, "Django==5.2.19\nredis==8.1.0\n", LOCK))

    assert "redis is absent" in problem


def test_a_locked_package_without_hash_fails(tmp_path):
    lock = LOCK + "idna==3.10\n    # via requests\n"

    [problem] = lock_problems(**write(tmp_path, "Django==5.2.19\n", lock))

    assert "idna==3.10 has no hash" in problem
