"""The pull request job against the fake GitHub: fetching, running the checks, concluding every run."""
import asyncio

import pytest

from bot.pr_flow import HeadTracker, PullRequestTarget, check_pull_request
from bot.publish import PR_CHECKS
from tests.ghflow_support import (BROKEN_RULE, INSTALLATION, annotation_requests, example_files, fetched_paths,
                                  new_bundle, new_rule_path, runs_by_name)


def target(pr):
    return PullRequestTarget(pr.repo.full_name, pr.number, pr.head_sha, pr.repo.default_branch, INSTALLATION)


async def run_job(fake, app, pr, **kw):
    return await check_pull_request(app.installation_client(INSTALLATION), target(pr), **kw)


async def test_broken_rule_fails_syntax_with_annotation_at_its_line(fake_github, gh_app):
    repo = fake_github.add_repo("octo/rules", installation_id=INSTALLATION, files=example_files())
    pr = fake_github.open_pull(repo, {"rules/windows/new.yml": BROKEN_RULE, **new_bundle(1), "docs/readme.md": "x"})
    conclusions = (await run_job(fake_github, gh_app, pr)).conclusions
    runs = runs_by_name(fake_github, repo, pr.head_sha)
    assert set(runs) == {f"detbot/{c}" for c in PR_CHECKS}
    assert all(r.status == "completed" for r in runs.values())
    syntax = runs["detbot/syntax"]
    assert syntax.conclusion == "failure" == conclusions["syntax"]
    (ann,) = [a for a in syntax.annotations if a["path"] == "rules/windows/new.yml"]
    assert ann["start_line"] == 5 and ann["annotation_level"] == "failure" and "YAML" in ann["title"]
    assert not [a for a in syntax.annotations if a["path"] != "rules/windows/new.yml"]
    assert "`rules/windows/new.yml`" in syntax.output["summary"]
    assert f"`{new_rule_path(1)}`" in syntax.output["summary"]
    assert [a["identifier"] for a in syntax.actions] == ["rerun"]
    assert runs["detbot/tests"].conclusion == "success"
    # Created in_progress before any work: the first request about each run is its creation.
    first = [r for r in fake_github.requests if "/check-runs" in r.path][:4]
    assert all(r.method == "POST" and r.body["status"] == "in_progress" for r in first)
    assert fake_github.requests.index(first[-1]) < fake_github.requests.index(
        fake_github.requests_to("/repos/*/pulls/*/files")[0])
    # Downloaded: the touched bundles, and the other rules (for the duplicate-id check), not their tests or ADS.
    fetched = fetched_paths(fake_github, repo, pr.head_sha)
    assert set(new_bundle(1)) | {"rules/windows/new.yml"} <= set(fetched)
    assert [p for p in fetched if p.endswith((".tests.yml", ".ads.md"))] == sorted(
        p for p in new_bundle(1) if not p.endswith("1.yml"))


async def test_passing_bundle_concludes_success_everywhere(fake_github, gh_app):
    repo = fake_github.add_repo("octo/rules", installation_id=INSTALLATION, files=example_files())
    pr = fake_github.open_pull(repo, new_bundle(3))
    await run_job(fake_github, gh_app, pr)
    runs = runs_by_name(fake_github, repo, pr.head_sha)
    assert {n: r.conclusion for n, r in runs.items()} == {f"detbot/{c}": "success" for c in PR_CHECKS}
    assert all(not r.annotations for r in runs.values())
    assert "all pass" in runs["detbot/tests"].output["title"]


async def test_pr_touching_no_rule_concludes_all_skipped(fake_github, gh_app):
    repo = fake_github.add_repo("octo/rules", installation_id=INSTALLATION, files=example_files())
    pr = fake_github.open_pull(repo, {"docs/a.md": "x", "README.md": "changed"})
    await run_job(fake_github, gh_app, pr)
    runs = runs_by_name(fake_github, repo, pr.head_sha)
    assert {r.conclusion for r in runs.values()} == {"skipped"}
    assert all("none of them a rule" in r.output["summary"] for r in runs.values())


async def test_pr_only_deleting_a_rule_says_so_in_the_skipped_runs(fake_github, gh_app):
    repo = fake_github.add_repo("octo/rules", installation_id=INSTALLATION, files=example_files())
    stem = "rules/network/zeek/zeek_dns_susp_tld"
    pr = fake_github.open_pull(repo, {}, delete=(f"{stem}.yml", f"{stem}.tests.yml", f"{stem}.ads.md"))
    await run_job(fake_github, gh_app, pr)
    runs = runs_by_name(fake_github, repo, pr.head_sha)
    assert {r.conclusion for r in runs.values()} == {"skipped"}
    for r in runs.values():
        assert r.output["title"] == "1 rule deleted, nothing left to check"
        assert f"deletes 1 rule (`{stem}.yml`)" in r.output["summary"]
        assert "none of them a rule" not in r.output["summary"]


async def test_config_error_fails_every_run_naming_key_and_line(fake_github, gh_app):
    repo = fake_github.add_repo("octo/rules", installation_id=INSTALLATION,
                                files=example_files("rules: ['rules/**/*.yml']\nchecks:\n  syntax: true\n  bogus: 1\n"))
    pr = fake_github.open_pull(repo, new_bundle(1))
    await run_job(fake_github, gh_app, pr)
    runs = runs_by_name(fake_github, repo, pr.head_sha)
    assert {r.conclusion for r in runs.values()} == {"failure"}
    for r in runs.values():
        assert "checks.bogus" in r.output["summary"] and "detbot.yml:4" in r.output["summary"]


async def test_error_in_a_checks_own_section_fails_every_run(fake_github, gh_app):
    """Not only the coverage run: the whole config is validated before any check runs."""
    repo = fake_github.add_repo("octo/rules", installation_id=INSTALLATION,
                                files=example_files("rules: ['rules/**/*.yml']\ncoverage:\n  value_level: loud\n"))
    pr = fake_github.open_pull(repo, new_bundle(1))
    await run_job(fake_github, gh_app, pr)
    runs = runs_by_name(fake_github, repo, pr.head_sha)
    assert {r.conclusion for r in runs.values()} == {"failure"}
    for r in runs.values():
        assert "coverage.value_level" in r.output["summary"] and "detbot.yml:3" in r.output["summary"]


async def test_config_is_read_from_default_branch_not_the_pr(fake_github, gh_app):
    repo = fake_github.add_repo("octo/rules", installation_id=INSTALLATION, files=example_files())
    pr = fake_github.open_pull(repo, {"rules/windows/bad.yml": BROKEN_RULE,
                                      ".github/detbot.yml": "checks:\n  syntax: false\n"})
    await run_job(fake_github, gh_app, pr)
    assert runs_by_name(fake_github, repo, pr.head_sha)["detbot/syntax"].conclusion == "failure"


async def test_disabled_check_and_warning_level(fake_github, gh_app):
    repo = fake_github.add_repo("octo/rules", installation_id=INSTALLATION,
                                files=example_files("checks:\n  syntax:\n    level: warning\n  ads: false\n"))
    pr = fake_github.open_pull(repo, {"rules/windows/bad.yml": BROKEN_RULE})
    await run_job(fake_github, gh_app, pr)
    runs = runs_by_name(fake_github, repo, pr.head_sha)
    assert runs["detbot/syntax"].conclusion == "neutral"
    assert runs["detbot/syntax"].annotations[0]["annotation_level"] == "warning"
    assert runs["detbot/ads"].conclusion == "skipped"
    assert "disabled" in runs["detbot/ads"].output["summary"]


async def test_120_findings_go_out_in_3_annotation_requests(fake_github, gh_app):
    repo = fake_github.add_repo("octo/rules", installation_id=INSTALLATION, files=example_files())
    pr = fake_github.open_pull(repo, {f"rules/bulk/r{i:03d}.yml": BROKEN_RULE for i in range(120)})
    await run_job(fake_github, gh_app, pr)
    syntax = runs_by_name(fake_github, repo, pr.head_sha)["detbot/syntax"]
    reqs = annotation_requests(fake_github, repo, "detbot/syntax")
    assert [len(r.body["output"]["annotations"]) for r in reqs] == [50, 50, 20]
    assert len(syntax.annotations) == 120 and syntax.conclusion == "failure"
    # Only the last request concludes.
    assert [r.body.get("conclusion") for r in reqs] == [None, None, "failure"]


async def test_annotation_cap_says_how_many_were_left_out(fake_github, gh_app):
    repo = fake_github.add_repo("octo/rules", installation_id=INSTALLATION,
                                files=example_files("github:\n  max_annotations: 60\n"))
    pr = fake_github.open_pull(repo, {f"rules/bulk/r{i:03d}.yml": BROKEN_RULE for i in range(75)})
    await run_job(fake_github, gh_app, pr)
    syntax = runs_by_name(fake_github, repo, pr.head_sha)["detbot/syntax"]
    assert len(syntax.annotations) == 60
    assert "15 findings not annotated" in syntax.output["summary"]


async def test_internal_error_concludes_failure_with_reason(fake_github, gh_app):
    repo = fake_github.add_repo("octo/rules", installation_id=INSTALLATION, files=example_files())
    pr = fake_github.open_pull(repo, new_bundle(1))
    fake_github.fail("/repos/*/pulls/*/files", times=10, status=403)
    await run_job(fake_github, gh_app, pr)
    runs = runs_by_name(fake_github, repo, pr.head_sha)
    assert {r.conclusion for r in runs.values()} == {"failure"}
    assert all("detbot failed" == r.output["title"] and "403" in r.output["summary"] for r in runs.values())


async def test_stale_sha_posts_only_cancelled(fake_github, gh_app):
    repo = fake_github.add_repo("octo/rules", installation_id=INSTALLATION, files=example_files())
    pr = fake_github.open_pull(repo, {"rules/windows/bad.yml": BROKEN_RULE})
    tracker = HeadTracker()
    t = target(pr)
    tracker.update(t.key, t.head_sha)
    # A newer push lands while the files are being listed.
    original = fake_github._handlers["pulls/list-files"]

    async def newer_push_meanwhile(call):
        tracker.update(t.key, "f" * 40)
        return await original(call)
    fake_github._handlers["pulls/list-files"] = newer_push_meanwhile
    await check_pull_request(gh_app.installation_client(INSTALLATION), t, is_current=tracker.is_current(t))
    runs = runs_by_name(fake_github, repo, pr.head_sha)
    assert {r.conclusion for r in runs.values()} == {"cancelled"}
    assert not any(r.annotations for r in runs.values())


async def test_cancelled_job_concludes_its_runs_cancelled(fake_github, gh_app):
    repo = fake_github.add_repo("octo/rules", installation_id=INSTALLATION, files=example_files())
    pr = fake_github.open_pull(repo, {"rules/windows/bad.yml": BROKEN_RULE})
    fake_github.latency = 0.05
    task = asyncio.create_task(run_job(fake_github, gh_app, pr))
    while len(fake_github.check_runs(repo)) < 4:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    runs = runs_by_name(fake_github, repo, pr.head_sha)
    assert {r.conclusion for r in runs.values()} == {"cancelled"}


async def test_fork_pr_renamed_and_removed_files(fake_github, gh_app):
    files = example_files()
    repo = fake_github.add_repo("octo/rules", installation_id=INSTALLATION,
                                files={**files, "rules/windows/old.yml": BROKEN_RULE})
    gone = "rules/cloud/azure/azure_signin_scripted_client"
    pr = fake_github.open_pull(repo, new_bundle(2), fork_owner="contributor",
                               renames={"rules/windows/new.yml": "rules/windows/old.yml"},
                               delete=(gone + ".yml", gone + ".tests.yml", gone + ".ads.md"))
    assert pr.is_fork
    await run_job(fake_github, gh_app, pr)
    runs = runs_by_name(fake_github, repo, pr.head_sha)
    syntax = runs["detbot/syntax"]
    assert syntax.conclusion == "failure"
    assert {a["path"] for a in syntax.annotations} == {"rules/windows/new.yml"}
    assert "azure_signin_scripted_client" not in syntax.output["summary"]
    assert f"`{new_rule_path(2)}`" in syntax.output["summary"]


async def test_3000_file_listing_is_capped_and_said(fake_github, gh_app):
    repo = fake_github.add_repo("octo/rules", installation_id=INSTALLATION, files=example_files())
    listing = [{"filename": f"docs/page{i:04d}.md", "status": "added", "sha": "0" * 40, "additions": 1,
                "deletions": 0, "changes": 1} for i in range(3100)]
    pr = fake_github.open_pull(repo, {"docs/page0000.md": "x"}, files_override=listing)
    await run_job(fake_github, gh_app, pr)
    assert len(fake_github.requests_to("/repos/*/pulls/*/files")) == 30
    runs = runs_by_name(fake_github, repo, pr.head_sha)
    # The 100 files GitHub did not list may hold rules: `skipped` would pass a required check unseen.
    assert {r.conclusion for r in runs.values()} == {"failure"}
    assert all("3,000 files" in r.output["summary"] for r in runs.values())


async def test_3000_file_listing_with_passing_rules_does_not_pass(fake_github, gh_app):
    repo = fake_github.add_repo("octo/rules", installation_id=INSTALLATION, files=example_files())
    pr = fake_github.open_pull(repo, new_bundle(1))
    unseen = [{"filename": f"rules/bulk/r{i:04d}.yml", "status": "added", "sha": "0" * 40, "additions": 1,
               "deletions": 0, "changes": 1} for i in range(3000)]
    pr.files_override = pr.changed_files() + unseen
    await run_job(fake_github, gh_app, pr)
    runs = runs_by_name(fake_github, repo, pr.head_sha)
    assert {r.conclusion for r in runs.values()} == {"failure"}
    assert all(r.output["title"].startswith("Incomplete: 1 rule checked: all pass") for r in runs.values())
    assert all("3,000 files" in r.output["summary"] for r in runs.values())


async def test_truncated_tree_walks_only_the_directories_needed(fake_github, gh_app):
    repo = fake_github.add_repo("octo/rules", installation_id=INSTALLATION, files=example_files())
    pr = fake_github.open_pull(repo, {"rules/windows/new.yml": BROKEN_RULE, **new_bundle(1)})
    fake_github.tree_truncate_at = 30  # the recursive listing of the whole repository is cut, as on huge repos
    await run_job(fake_github, gh_app, pr)
    trees = [r.path for r in fake_github.requests_to("/repos/*/git/trees/*")]
    assert len(trees) > 1  # the recursive one, then the path down to rules/windows
    runs = runs_by_name(fake_github, repo, pr.head_sha)
    assert [a["path"] for a in runs["detbot/syntax"].annotations] == ["rules/windows/new.yml"]
    assert runs["detbot/tests"].conclusion == "success" and runs["detbot/ads"].conclusion == "success"
    assert "rules/cloud" not in " ".join(fetched_paths(fake_github, repo, pr.head_sha))


async def test_pr_changing_only_sigmahq_regression_data_checks_the_rule(fake_github, gh_app):
    """The JSON export of a rule's regression test is outside the rule globs: a pull request breaking it alone
    concluded `skipped` everywhere, so a required check passed."""
    import json
    files = example_files()
    rule_path = "rules/windows/proc_creation_win_certutil_download.yml"
    files[rule_path] += "regression_tests_path: regression_data/certutil/info.yml\n"
    files["regression_data/certutil/info.yml"] = (
        "regression_tests_info:\n  - name: Positive Detection Test\n    type: evtx\n    match_count: 1\n"
        "    path: regression_data/certutil/x.evtx\n")
    benign = {"Event": {"System": {"EventID": 1}, "EventData": {"Image": "C:\\Windows\\notepad.exe"}}}
    repo = fake_github.add_repo("octo/rules", installation_id=INSTALLATION, files=files)
    pr = fake_github.open_pull(repo, {"regression_data/certutil/x.json": json.dumps(benign)})
    await run_job(fake_github, gh_app, pr)
    runs = runs_by_name(fake_github, repo, pr.head_sha)
    assert runs["detbot/tests"].conclusion == "failure"
    assert any(a["path"] == "regression_data/certutil/info.yml" for a in runs["detbot/tests"].annotations)


async def test_pr_changing_only_the_config_checks_nothing(fake_github, gh_app):
    """Unlike `detbot check --changed-only`, the App judges a pull request by the default branch's config, so a
    pull request editing only the config changes no verdict (and cannot loosen its own checks)."""
    repo = fake_github.add_repo("octo/rules", installation_id=INSTALLATION, files=example_files())
    pr = fake_github.open_pull(repo, {".github/detbot.yml": "checks:\n  syntax: false\n"})
    await run_job(fake_github, gh_app, pr)
    assert {r.conclusion for r in runs_by_name(fake_github, repo, pr.head_sha).values()} == {"skipped"}


@pytest.mark.parametrize("deleted, check, title", [(".tests.yml", "coverage", "No tests"),
                                                   (".ads.md", "ads", "ADS missing")])
async def test_deleting_only_a_rules_tests_or_ads_fails_that_rule(fake_github, gh_app, deleted, check, title):
    """A removed file is not at the head SHA, but its rule is: the rule must be checked (not `skipped`)."""
    from tests.ghflow_support import CERTUTIL
    repo = fake_github.add_repo("octo/rules", installation_id=INSTALLATION, files=example_files())
    pr = fake_github.open_pull(repo, delete=(CERTUTIL + deleted,))
    await run_job(fake_github, gh_app, pr)
    runs = runs_by_name(fake_github, repo, pr.head_sha)
    assert runs[f"detbot/{check}"].conclusion == "failure"
    assert [(a["path"], a["title"]) for a in runs[f"detbot/{check}"].annotations] == [
        (CERTUTIL + ".yml", f"{check}: {title}")]


async def test_findings_in_multibyte_text_stay_within_githubs_byte_limit(fake_github, gh_app):
    """GitHub counts a check run's summary and text in UTF-8 bytes: 65,535 characters of CJK paths is three times
    that, and the conclusion was refused (422), turning a plain syntax failure into "detbot failed"."""
    repo = fake_github.add_repo("octo/rules", installation_id=INSTALLATION, files=example_files())
    name = "検知ルール" * 20
    pr = fake_github.open_pull(repo, {f"rules/bulk/{name}{i:03d}.yml": BROKEN_RULE for i in range(150)})
    await run_job(fake_github, gh_app, pr)
    syntax = runs_by_name(fake_github, repo, pr.head_sha)["detbot/syntax"]
    assert syntax.conclusion == "failure" and syntax.output["title"].startswith("150 failures")
    assert len(syntax.output["text"].encode()) <= 65535 < len(syntax.output["text"]) * 3
    assert syntax.output["text"].endswith("characters)._")


async def test_one_refused_create_leaves_no_run_in_progress(fake_github, gh_app):
    """The other creates were still in flight when the refused one failed the job: concluded before they existed,
    those runs stayed `in_progress` for good."""
    repo = fake_github.add_repo("octo/rules", installation_id=INSTALLATION, files=example_files())
    pr = fake_github.open_pull(repo, new_bundle(1))
    fake_github.fail("/repos/*/check-runs", times=1, status=422, method="POST")
    await run_job(fake_github, gh_app, pr)
    runs = fake_github.check_runs(repo, pr.head_sha)
    assert len(runs) == 3
    assert {r.conclusion for r in runs} == {"failure"} and all("422" in r.output["summary"] for r in runs)
