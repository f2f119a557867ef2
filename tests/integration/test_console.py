"""The web console in a real headless Chromium, over real HTTP, on real Kafka and PostgreSQL with
the four services running: a district onboarded by upload, its run followed to the end, a finding
opened, a hold reviewed and approved, the audit entry seen; a viewer cannot decide, a token of
another tenant sees nothing of this one. The screenshots in docs/console/ come from here."""

from __future__ import annotations

import asyncio
import re
import shutil
from pathlib import Path
from uuid import UUID

import asyncpg
import pytest
from playwright.async_api import Page, expect
from rostersync_libs.settings import ServiceSettings

from tests.api import api, api_settings, token
from tests.browser import DESKTOP, TABLET, chromium, csrf_token, shot, signed_in
from tests.bundles import without_enrollments, zipped
from tests.pipeline import running_pipeline

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "springfield"
RUN_URL = re.compile(r"/console/tenants/springfield/runs/([0-9a-f-]{36})$")
REASON = "Springfield ended last term's classes"


def secret_of(headers: dict[str, str]) -> str:
    return headers["Authorization"].removeprefix("Bearer ")


async def upload(page: Page, bundle: Path) -> UUID:
    """Upload through the Upload page; the run's page opens."""
    await page.get_by_role("link", name="Upload", exact=True).click()
    await page.get_by_label("District").select_option("springfield")
    await page.get_by_label("Bundle (.zip)").set_input_files(bundle)
    await page.get_by_role("button", name="Upload and sync").click()
    await page.wait_for_url(RUN_URL)
    found = RUN_URL.search(page.url)
    assert found
    return UUID(found.group(1))


async def test_the_console_onboards_a_district_and_approves_its_hold_in_a_browser(
    settings: ServiceSettings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    admin = secret_of(await token(db, settings, "admin"))
    viewer = secret_of(await token(db, settings, "viewer"))
    other = secret_of(await token(db, settings, "admin", ["someone-else"]))
    admin_headers = {"Authorization": f"Bearer {admin}"}
    shutil.copytree(EXAMPLE, tmp_path / "springfield")
    first_bundle = zipped(tmp_path / "springfield", tmp_path / "springfield.zip")
    held_bundle = zipped(
        without_enrollments(tmp_path / "springfield", tmp_path / "b2"), tmp_path / "b2.zip"
    )
    no_file = tmp_path / "no-tenants.toml"
    district = {"id": "springfield", "name": "Springfield Public Schools",
                "sources": [{"id": "csv", "kind": "csv", "path": str(tmp_path / "springfield")}]}  # fmt: skip

    async with (
        running_pipeline(settings, no_file),
        api(api_settings(settings, no_file, tmp_path / "uploads")) as http,
        chromium() as browser,
    ):
        created = await http.post("/api/v1/tenants", json=district, headers=admin_headers)
        assert created.status_code == 201
        url = str(http.base_url).rstrip("/")

        # Sign in: the console sends a stranger to the sign-in page; the cookie is HttpOnly, Strict.
        page = await (await browser.new_context(viewport=DESKTOP)).new_page()
        await page.goto(f"{url}/console/")
        assert page.url == f"{url}/console/sign-in"
        await shot(page, "sign-in")
        await page.get_by_label("API token").fill("rs_not-a-token")
        await page.get_by_role("button", name="Sign in").click()
        await expect(page.get_by_role("alert")).to_contain_text("not valid")
        # By keyboard alone: the token field has the focus, Enter signs in.
        assert await page.evaluate("document.activeElement.id") == "token"
        await page.keyboard.type(admin)
        await page.keyboard.press("Enter")
        await expect(page.get_by_role("heading", name="Districts")).to_be_visible()
        await page.keyboard.press("Tab")
        assert await page.evaluate("document.activeElement.textContent") == "Skip to content"
        cookie = next(c for c in await page.context.cookies() if c["name"] == "rostersync_console")
        assert (cookie["httpOnly"], cookie["sameSite"]) == (True, "Strict")
        await expect(page.get_by_role("row", name=re.compile("Springfield"))).to_contain_text(
            "never synced"
        )

        # Onboard by upload; the run's page follows the run to its end by itself.
        first = await upload(page, first_bundle)
        status = page.locator("#run-status .status")
        assert await status.text_content() in ("requested", "running")
        await expect(status).to_have_text("completed", timeout=90_000)
        await expect(page.get_by_role("heading", name="Findings by code")).to_be_visible()
        files = page.locator("table").first
        await expect(files.get_by_role("row", name=re.compile("^users.csv"))).to_be_visible()

        # Open a finding: its examples say where, what was found and what was expected.
        finding = page.locator("details.finding", has_text="invalid_enumeration")
        await expect(finding.locator("td code", has_text="principal")).to_be_hidden()
        await finding.locator("summary").click()
        await expect(finding.locator("td code", has_text="principal")).to_be_visible()
        await expect(finding).to_contain_text("users.csv")
        await shot(page, "run")

        # Rejected records, searched as one types; the findings as CSV through the same link.
        rejected = page.locator("#rejected-rows tr")
        await expect(rejected).to_have_count(2)
        await page.get_by_label("Search rejected records").fill("cls-does-not-exist")
        await expect(rejected).to_have_count(1)
        await expect(rejected).to_contain_text("enrollments")
        await shot(page, "run-rejections-search")
        href = await page.get_by_role("link", name="Download every finding (CSV)").get_attribute(
            "href"
        )
        csv_answer = await page.request.get(f"{url}{href}")
        assert csv_answer.status == 200
        assert csv_answer.headers["content-type"].startswith("text/csv")
        assert (await csv_answer.text()).splitlines()[0].startswith("severity,code,file,row")

        # A bulk file without enrollments: held by the safety threshold, reviewed on its page.
        held = await upload(page, held_bundle)
        await expect(status).to_have_text("held", timeout=90_000)
        await page.get_by_role("link", name="Review the hold").click()
        enrollments = await db.fetchval(
            "SELECT count(*) FROM enrollments WHERE tenant_id = 'springfield'"
            " AND archived_at IS NULL"
        )
        card = page.locator("section.card", has_text="enrollments")
        await expect(card).to_contain_text(f"{enrollments} of {enrollments} active")
        await card.get_by_text("Sample of 20 sourcedIds").click()
        await expect(card.locator("li")).to_have_count(20)
        per_school = card.get_by_role("table", name="Per school")
        counts = [
            int(n) for n in await per_school.locator("tbody td:nth-child(2)").all_inner_texts()
        ]
        assert sum(counts) == enrollments
        await shot(page, "hold")
        hold_url = page.url

        # A form posted without its CSRF token is refused, even for an admin.
        no_csrf = await page.request.post(hold_url, form={"verdict": "approve", "reason": "x"})
        assert no_csrf.status == 403

        # A viewer sees the hold but no approve button, and its post of the form is a 403.
        viewing = await signed_in(browser, url, viewer)
        await viewing.goto(hold_url)
        await expect(viewing.get_by_text("an operator decides holds")).to_be_visible()
        await expect(viewing.get_by_role("button", name=re.compile("Approve"))).to_have_count(0)
        form: dict[str, str | float | bool] = {
            "csrf_token": await csrf_token(viewing),
            "verdict": "approve",
            "reason": "x",
        }
        assert (await viewing.request.post(hold_url, form=form)).status == 403
        await expect(viewing.get_by_role("link", name="Upload", exact=True)).to_have_count(0)

        # A token of another tenant sees nothing of this one: not listed, every page a 404.
        outsider = await signed_in(browser, url, other)
        outsiders_csrf = await csrf_token(outsider)
        await expect(outsider.get_by_text("Springfield")).to_have_count(0)
        for path in (f"/console/tenants/springfield/runs/{first}", hold_url.removeprefix(url),
                     "/console/tenants/springfield/sources",
                     f"/console/tenants/springfield/runs/{first}/findings.csv"):  # fmt: skip
            seen = await outsider.goto(f"{url}{path}")
            assert seen is not None
            assert seen.status == 404, path
        form = {"csrf_token": outsiders_csrf, "verdict": "approve", "reason": "x"}
        assert (await outsider.request.post(hold_url, form=form)).status == 404
        assert not await db.fetchval(
            "SELECT count(*) FROM operator_audit WHERE run_id = $1 AND action LIKE 'hold_%'", held
        )

        # The operator's decision: the API's, audited, applied by the writer.
        await page.get_by_label("Reason").fill(REASON)
        await page.get_by_role("button", name="Approve the removals").click()
        await expect(page.get_by_role("status")).to_contain_text("Decision sent: approve")
        await expect(page.get_by_role("button", name=re.compile("Approve"))).to_have_count(0)
        async with asyncio.timeout(60):
            while await db.fetchval(
                "SELECT count(*) FROM enrollments WHERE tenant_id = 'springfield'"
                " AND archived_at IS NULL"
            ):
                await asyncio.sleep(0.2)
        await page.get_by_role("link", name="Audit log").click()
        newest = page.locator("tbody tr").first
        await expect(newest).to_contain_text("hold_approve")
        await expect(newest).to_contain_text(REASON)
        await shot(page, "audit")

        # Sources: test the connection, add a REST source with a secret that is never shown.
        await page.goto(f"{url}/console/tenants/springfield/sources")
        await page.get_by_role("button", name="Test connection").click()
        await expect(page.locator("#test-csv output")).to_contain_text("a bundle folder, readable")
        await page.get_by_role("link", name="Add a source").click()
        await shot(page, "source-form")
        await page.get_by_label("Source id").fill("sis")
        await page.get_by_label("OneRoster API").check()
        await page.get_by_label("Base URL").fill("https://sis.example.org")
        await page.get_by_label("OAuth 2 client id").fill("springfield")
        await page.get_by_label("OAuth 2 token URL").fill("https://sis.example.org/token")
        await page.get_by_label("Secret (write-only").fill("s3cret-never-shown")
        await page.get_by_role("button", name="Save the source").click()
        sis = page.get_by_role("row", name=re.compile("^sis"))
        await expect(sis).to_contain_text("stored")
        assert "s3cret-never-shown" not in await page.content()
        await page.get_by_role("button", name="Pause schedules").click()
        await expect(page.get_by_text("Schedules and inboxes: paused")).to_be_visible()
        await page.get_by_role("button", name="Test connection").first.click()
        await shot(page, "sources")

        # Districts: last run, open holds, rejections and the trend of the last runs.
        await page.goto(f"{url}/console/")
        row = page.get_by_role("row", name=re.compile("Springfield"))
        await expect(row).to_contain_text("completed")
        await expect(row.locator("svg.trend")).to_have_attribute(
            "aria-label", re.compile("^Last 2 runs")
        )
        await shot(page, "districts")
        await page.get_by_role("link", name="Springfield Public Schools").click()
        await expect(page.locator("tbody tr")).to_have_count(2)
        await shot(page, "district")
        await page.get_by_role("link", name="Upload", exact=True).click()
        await shot(page, "upload")

        # At tablet width every page still fits.
        await page.set_viewport_size(TABLET)
        for name, path in (("districts", "/console/"),
                           ("run", f"/console/tenants/springfield/runs/{first}"),
                           ("hold", hold_url.removeprefix(url))):  # fmt: skip
            await page.goto(f"{url}{path}")
            await shot(page, f"{name}-768")

        actions = [r["action"] for r in await db.fetch("SELECT action FROM api_audit ORDER BY id")]
        assert actions == ["tenant_created", "sync", "sync", "hold_approve", "source_set",
                           "source_secret_set", "tenant_paused"]  # fmt: skip
