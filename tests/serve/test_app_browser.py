"""The studio end to end in a real browser: headless Chromium (Debian's) driven by Playwright against `genseq serve`.

Every request the page makes must stay on the studio's address: any other is aborted and fails the test. The page
is opened at http://127.0.0.1:PORT, as genseq serve prints it, and once at http://localhost:PORT: the studio's guard
(Host, Origin, content types) must let the user's own browser through under either name.
"""

import contextlib
import zipfile
from pathlib import Path

import pretty_midi
import pytest

from genseq import api
from tests.helpers import ROOT, TUNES, band_with_tempo_changes, studio_process

playwright = pytest.importorskip("playwright.sync_api", reason="needs playwright (pip install -e '.[dev]')")
CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip("needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)", allow_module_level=True)

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def studio_url(tmp_path_factory):
    """`genseq serve` on a free local port with an empty runs folder."""
    with studio_process(tmp_path_factory.mktemp("runs")) as (url, process):
        assert url in process.stdout.readline()
        yield url


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield launched
        launched.close()


@contextlib.contextmanager
def studio_page(browser, url: str):
    """A fresh page on the studio at `url`; requests that leave it are aborted and fail the test at its end."""
    context = browser.new_context(accept_downloads=True, viewport={"width": 1400, "height": 1000})
    outside: list[str] = []

    def only_this_machine(route):
        if route.request.url.startswith(url + "/"):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    context.route("**/*", only_this_machine)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda err: errors.append(str(err)))
    opened.goto(url + "/")
    opened.wait_for_selector("#models li[data-model=folk-abc-small]")
    yield opened
    context.close()
    assert outside == [], f"requests left the machine: {outside}"
    assert errors == [], f"script errors on the page: {errors}"


@pytest.fixture
def page(browser, studio_url):
    """The studio as the address genseq serve prints opens it (http://127.0.0.1:PORT)."""
    with studio_page(browser, studio_url) as opened:
        yield opened


def watch_live_text(page) -> None:
    """Count in the page how many times the live text grew, so tokens seen arriving can be checked afterwards."""
    page.evaluate("""() => {
        window.grew = 0;
        new MutationObserver(() => { window.grew += 1; }).observe(
            document.querySelector('#live-text'), {childList: true, characterData: true, subtree: true});
    }""")


def test_generate_watch_it_write_see_the_score_play_and_download_the_midi(page, tmp_path):
    page.click("#models li[data-model=folk-abc-small]")
    page.fill("input[name=length]", "400")
    page.uncheck("#new-seed")
    page.fill("#seed", "7")
    watch_live_text(page)
    page.click("#generate")
    page.wait_for_selector(".sample[data-sample='1'] audio", timeout=90_000)
    assert page.evaluate("window.grew") >= 2  # the panes were made, then tokens streamed into them
    assert "seed 7" in page.inner_text("#result-meta")
    tune = page.inner_text(".sample pre")
    assert tune.startswith("X:") and "K:" in tune

    page.wait_for_selector(".sample .score svg g.measure")  # engraved inline, its bars to be chosen
    assert page.evaluate("document.querySelector('.sample .score svg').getBoundingClientRect().width") > 100

    assert page.evaluate("document.querySelector('.sample canvas').width") > 0  # the piano roll is drawn
    duration = page.evaluate("""async () => {
        const audio = document.querySelector('.sample audio');
        audio.muted = true;
        await audio.play();
        await new Promise((done) => setTimeout(done, 700));
        return [audio.duration, audio.currentTime, audio.paused];
    }""")
    assert duration[0] > 2 and duration[1] > 0.2 and not duration[2]  # it plays

    with page.expect_download() as download:
        page.click(".sample a[data-kind=mid]")
    midi = Path(download.value.path()).read_bytes()
    assert midi[:4] == b"MThd" and download.value.suggested_filename.endswith("-1.mid")

    page.wait_for_selector("#history tbody tr")
    assert "folk-abc-small" in page.inner_text("#history tbody tr")


def test_stop_a_long_generation_and_keep_what_was_written(page):
    page.click("#models li[data-model=folk-abc-small]")
    page.fill("input[name=length]", "20000")
    page.uncheck("#stop-at-end")
    page.click("#generate")
    page.wait_for_function("(document.querySelector('#live-text pre') || {textContent: ''}).textContent.length > 40")
    written = len(page.inner_text("#live-text pre"))
    page.click("#stop")
    page.wait_for_selector("#result:not([hidden]) .sample pre", timeout=90_000)
    assert "stopped early" in page.inner_text("#result-meta")
    assert written <= len(page.inner_text(".sample pre")) < 20000
    assert page.is_enabled("#generate") and not page.is_enabled("#stop")


def test_a_bad_setting_is_one_line_on_the_page_and_the_studio_goes_on(page):
    page.fill("#temperature", "-1")
    page.click("#generate")
    page.wait_for_selector("#error:not([hidden])")
    assert page.inner_text("#error") == "--temperature must be a number >= 0 (0 is greedy), got -1.0"
    assert page.is_enabled("#generate")


def test_the_history_shows_an_earlier_result_after_a_reload(page):
    page.click("#models li[data-model=folk-abc-small]")
    page.fill("input[name=length]", "300")
    page.click("#generate")
    page.wait_for_selector("#result:not([hidden]) .sample")
    seed = page.inner_text("#result-meta").split("seed ")[1].split(" ")[0]
    page.reload()
    page.wait_for_selector("#history tbody tr")
    assert page.is_hidden("#result")
    page.click(f"#history tbody tr:has(td:text-is('{seed}')) button:has-text('show')")
    page.wait_for_selector("#result:not([hidden]) .sample")
    assert f"seed {seed}" in page.inner_text("#result-meta")


def test_a_primer_file_fills_the_box_or_primes_the_chorale_model(page, tmp_path):
    tunes = tmp_path / "two tunes.abc"
    tunes.write_text("X:7\nT:First\nM:6/8\nL:1/8\nK:G\nGAB c2d|\n\nX:8\nT:Second\nK:D\nDEF|\n", encoding="utf-8")
    page.click("#models li[data-model=folk-abc-small]")
    page.set_input_files("#primer-file", str(tunes))
    page.wait_for_function("document.querySelector('#primer').value.includes('T:First')")
    assert "Second" not in page.input_value("#primer")

    melody = tmp_path / "melody.mid"
    melody.write_bytes(ROOT.joinpath("examples", "bach-chorales", "sample-01.mid").read_bytes())
    assert page.is_hidden("#voice-leading") and page.is_visible("#full-bars") and page.is_checked("#full-bars")
    page.click("#models li[data-model=bach-chorales-small]")
    assert page.is_visible("#voice-leading") and page.is_checked("#voice-leading") and page.is_hidden("#full-bars")
    page.set_input_files("#primer-file", str(melody))
    page.wait_for_selector("#upload-chip:not([hidden])")
    assert page.inner_text("#upload-name") == "primer: melody.mid"
    page.fill("input[name=length]", "60")
    page.click("#generate")
    page.wait_for_selector("#result:not([hidden]) .sample audio", timeout=120_000)
    assert "melody.mid" not in page.inner_text("#error") and page.is_hidden("#error")

    soprano = pretty_midi.PrettyMIDI(str(melody))  # its top voice alone: a melody, which the model harmonises
    soprano.instruments = soprano.instruments[:1]
    soprano.write(str(tmp_path / "tune.mid"))
    page.set_input_files("#primer-file", str(tmp_path / "tune.mid"))
    page.wait_for_function("document.querySelector('#upload-name').textContent.includes('tune.mid')")
    assert page.inner_text("#upload-name") == "melody to harmonise: tune.mid"
    page.click("#generate")
    page.wait_for_function("document.querySelector('#result-meta').textContent.includes('harmonising tune.mid')",
                           timeout=120_000)
    page.wait_for_selector("#result:not([hidden]) .sample audio")
    assert page.is_hidden("#error")

    page.click("#models li[data-model=folk-abc-small]")
    page.set_input_files("#primer-file", str(melody))
    page.wait_for_selector("#error:not([hidden])")
    assert page.inner_text("#error") == "melody.mid cannot prime this abc model; give a text or .abc file"


def test_the_page_works_when_opened_as_localhost(browser, studio_url, tmp_path):
    tune = tmp_path / "tune.abc"
    tune.write_text("X:3\nT:Local\nM:6/8\nL:1/8\nK:G\nGAB c2d|\n", encoding="utf-8")
    with studio_page(browser, studio_url.replace("127.0.0.1", "localhost")) as page:
        page.click("#models li[data-model=folk-abc-small]")
        page.set_input_files("#primer-file", str(tune))  # a POST of raw bytes
        page.wait_for_function("document.querySelector('#primer').value.includes('T:Local')")
        page.fill("input[name=length]", "20000")
        page.uncheck("#stop-at-end")
        page.click("#generate")  # a POST of JSON, streamed back
        page.wait_for_function("(document.querySelector('#live-text pre') || {textContent: ''}).textContent.length"
                               " > 60")
        page.click("#stop")  # a POST to stop it
        page.wait_for_selector("#result:not([hidden]) .sample, #error:not([hidden])", timeout=120_000)
        assert page.is_hidden("#error"), page.inner_text("#error")
        assert "stopped early" in page.inner_text("#result-meta")
        assert page.locator(".sample audio").count() == 1, page.inner_text(".sample")  # else its note says why
        assert page.evaluate("fetch('/api/history').then(r => r.status)") == 200


def test_the_studio_samples_each_model_at_its_own_temperature_until_the_slider_moves(page):
    """bach-chorales-small ships temperature 0.8: the slider shows it and the page sends none, so the studio
    samples at 0.8 as the CLI does; once the user moves the slider, its value is sent and used."""
    page.click("#models li[data-model=bach-chorales-small]")
    assert page.input_value("#temperature") == "0.8" and page.input_value("#temperature-range") == "0.8"
    page.fill("input[name=length]", "30")
    with page.expect_request("**/api/generate") as sent:
        page.click("#generate")
    assert "temperature" not in sent.value.post_data_json
    page.wait_for_selector("#result:not([hidden]) .sample")
    assert "temperature 0.8 ·" in page.inner_text("#result-meta")

    page.click("#models li[data-model=folk-abc-small]")  # each model's own, while the user has chosen none
    assert page.input_value("#temperature") == "1"
    page.click("#models li[data-model=bach-chorales-small]")
    page.fill("#temperature-range", "1.2")  # the slider moved
    assert page.input_value("#temperature") == "1.2"
    with page.expect_request("**/api/generate") as sent:
        page.click("#generate")
    assert sent.value.post_data_json["temperature"] == "1.2"
    page.wait_for_function("document.querySelector('#result-meta').textContent.includes('temperature 1.2 ·')",
                           timeout=90_000)
    page.click("#models li[data-model=folk-abc-small]")  # a temperature chosen stays chosen
    assert page.input_value("#temperature") == "1.2"


def test_train_on_uploaded_tunes_watch_the_loss_and_samples_stop_and_generate_with_the_new_model(browser, tmp_path):
    """The Train tab end to end on its own studio (a training refuses generations): files and a zip in, a fine-tune
    of folk-abc-small streamed to the page, Generate refused while it runs, Stop, then the new model generates."""
    tunes = tmp_path / "waltzes.abc"
    tunes.write_text(TUNES, encoding="utf-8")
    archive = tmp_path / "more.zip"
    with zipfile.ZipFile(archive, "w") as packed:
        packed.writestr("more/jig.abc", "X:1\nT:Jig\nM:6/8\nL:1/8\nK:D\n|:DFA dAF|GBd gdB:|\n")
        packed.writestr("more/cover.jpg", b"\xff\xd8")
    with studio_process(tmp_path / "runs") as (url, _), studio_page(browser, url) as page:
        page.click("#tab-train")
        assert page.is_visible("#train-tab") and page.is_hidden("#generate-tab")
        page.set_input_files("#train-files", [str(tunes), str(archive)])
        page.wait_for_function("document.querySelector('#train-upload').textContent.includes('1 skipped')")
        assert page.inner_text("#train-upload").startswith("2 files")
        assert page.inner_text("#train-skipped") == "cover.jpg: not .abc, .txt, .mid, .midi"
        bases = page.eval_on_selector_all("#train-base option", "options => options.map(o => o.value)")
        assert bases[0] == "" and "folk-abc-small" in bases and "bach-chorales-small" not in bases
        page.select_option("#train-base", "folk-abc-small")
        page.fill("#train-minutes", "1")
        page.click("#train-start")
        page.wait_for_selector("#train-samples pre", timeout=120_000)
        assert page.inner_text("#train-samples pre").startswith("X:")
        assert "Samples at step" in page.inner_text("#train-samples-title")
        assert page.eval_on_selector_all("#train-curve circle", "dots => dots.length") >= 1
        assert page.inner_text("#train-status").startswith("step ")

        page.click("#tab-generate")
        assert not page.is_enabled("#generate") and "a training is running" in page.inner_text("#busy-note")
        page.click("#tab-train")
        page.click("#train-stop")
        page.wait_for_function("document.querySelector('#train-status').textContent.startsWith('stopped at step')",
                               timeout=120_000)
        page.wait_for_selector("#trainings tbody tr td.stopped")
        page.click("#train-use")
        chosen = page.get_attribute("#models li.chosen", "data-model")
        assert chosen.startswith("run:studio-") and chosen.endswith("folk-abc-small")
        assert page.is_enabled("#generate") and page.is_hidden("#busy-note")
        page.fill("input[name=length]", "80")
        page.click("#generate")
        page.wait_for_selector("#result:not([hidden]) .sample pre", timeout=90_000)
        assert page.inner_text(".sample pre").startswith("X:")


def generate_tune(page, seed: int = 7) -> str:
    """A folk tune generated with a fixed seed and shown with its engraved score; its text."""
    page.click("#models li[data-model=folk-abc-small]")
    page.fill("input[name=length]", "400")
    page.uncheck("#new-seed")
    page.fill("#seed", str(seed))
    page.click("#generate")
    page.wait_for_selector("#samples .score[data-bars=mapped] g.bar", timeout=90_000)
    return page.inner_text("#samples pre")


def marked_bars(page, where: str, kind: str) -> list[str]:
    return page.eval_on_selector_all(f"{where} .score g.bar.{kind}", "bars => bars.map(b => b.dataset.bar)")


def test_bars_chosen_on_the_score_are_drawn_again_beside_the_original_kept_and_stepped_back(page):
    original = generate_tune(page)
    page.click("#samples .score g.bar[data-bar='5']")
    page.click("#samples .score g.bar[data-bar='8']", modifiers=["Shift"])
    assert page.input_value("#refill-span") == "5-8"
    assert marked_bars(page, "#samples", "chosen") == ["5", "6", "7", "8"]
    page.click("#refill-go")
    page.wait_for_selector("#compare:not([hidden]) #compare-new .score g.bar.refilled", timeout=90_000)
    assert page.is_hidden("#result") and page.is_hidden("#error")
    assert marked_bars(page, "#compare-original", "chosen") == ["5", "6", "7", "8"]
    assert marked_bars(page, "#compare-new", "refilled") == ["5", "6", "7", "8"]
    for side in ("#compare-original", "#compare-new"):  # heard and seen, side by side
        assert page.locator(f"{side} audio").count() == 1 and page.locator(f"{side} .score > svg").count() == 1
    left, right = (page.locator(side).bounding_box() for side in ("#compare-original", "#compare-new"))
    assert left["x"] + left["width"] <= right["x"] and abs(left["y"] - right["y"]) < 5
    assert page.inner_text("#compare-original pre") == original
    refilled = page.inner_text("#compare-new pre")
    fill = page.inner_text("#compare-new pre mark.refilled")
    span = page.inner_text("#compare-original pre mark.chosen")
    before = original[:original.index(span)]
    assert refilled == before + fill + original[len(before) + len(span):]  # the rest note for note

    page.click("#keep-new")
    page.wait_for_selector("#result:not([hidden])")
    assert page.is_hidden("#compare") and page.inner_text("#samples pre") == refilled
    assert page.inner_text("#version-label") == "version 2 of 2"
    assert "bars 5-8 drawn again (best of 8)" in page.inner_text("#result-meta")
    assert marked_bars(page, "#samples", "refilled") == ["5", "6", "7", "8"]  # the new bars stay marked
    page.click("#version-previous")
    page.wait_for_function("document.querySelector('#version-label').textContent === 'version 1 of 2'")
    assert page.inner_text("#samples pre") == original and not page.is_enabled("#version-previous")
    page.wait_for_selector("#history tbody tr.current")  # the history marks the version shown, and each refill
    assert page.locator("#history tbody tr:has-text('folk-abc-small · bars 5-8 again')").count() >= 1


def test_bars_typed_from_the_keyboard_a_bad_span_is_one_line_and_the_original_can_be_kept(page):
    original = generate_tune(page)
    page.focus("#refill-span")
    page.keyboard.type("5-")
    assert page.inner_text("#refill-problem") == "write the span as 5-8, or one number"
    page.keyboard.type("8")
    assert page.inner_text("#refill-problem") == "" and marked_bars(page, "#samples", "chosen") == ["5", "6", "7", "8"]
    page.fill("#refill-span", "40-44")
    page.keyboard.press("Enter")
    page.wait_for_selector("#error:not([hidden])")
    assert page.inner_text("#error") == "--bars 40-44 lies outside the tune, which has 18 bars besides its pickups"
    page.fill("#refill-span", "5-8")
    page.keyboard.press("Enter")
    page.wait_for_selector("#compare:not([hidden]) #compare-new .score g.bar.refilled", timeout=90_000)
    assert page.is_hidden("#error") and page.evaluate("document.activeElement.id") == "keep-new"
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Enter")  # keep the original
    page.wait_for_selector("#result:not([hidden])")
    assert page.inner_text("#samples pre") == original
    assert page.inner_text("#version-label") == "version 1 of 2"


def test_characters_selected_in_a_text_are_drawn_again(page):
    page.click("#models li[data-model=shakespeare-small]")
    page.fill("input[name=length]", "200")
    page.uncheck("#new-seed")
    page.fill("#seed", "3")
    page.click("#generate")
    page.wait_for_selector("#samples pre.text", timeout=90_000)
    original = page.inner_text("#samples pre")
    page.evaluate("""() => {  // the user drags over characters 50 to 80
        const text = document.querySelector('#samples pre.text').firstChild;
        const range = document.createRange();
        range.setStart(text, 49);
        range.setEnd(text, 80);
        getSelection().removeAllRanges();
        getSelection().addRange(range);
    }""")
    page.dispatch_event("#samples pre.text", "mouseup")
    assert page.input_value("#refill-span") == "50-80"
    assert page.inner_text("#samples pre mark.chosen") == original[49:80]
    page.click("#refill-go")
    page.wait_for_selector("#compare:not([hidden]) #compare-new pre mark.refilled", timeout=90_000)
    refilled = page.inner_text("#compare-new pre")
    assert len(page.inner_text("#compare-new pre mark.refilled")) == 31
    assert refilled[:49] == original[:49] and refilled[80:] == original[80:]
    assert page.inner_text("#compare-original pre mark.chosen") == original[49:80]


def generate_chorale(page) -> None:
    """A chorale of 40 beats at 120 bpm (bach-chorales-small, 600 tokens, seed 1), shown with its piano roll."""
    page.click("#models li[data-model=bach-chorales-small]")
    page.fill("input[name=length]", "600")
    page.uncheck("#new-seed")
    page.fill("#seed", "1")
    page.click("#generate")
    page.wait_for_selector("#samples canvas.roll.pickable", timeout=90_000)


def band(page, where: str, kind: str):
    """The span shaded on a piano roll, in seconds (None where none is)."""
    return page.eval_on_selector(f"{where} canvas.roll", f"roll => roll.bands.{kind} || null")


def test_beats_dragged_across_a_chorales_piano_roll_are_drawn_again_beside_the_original_and_kept(page):
    generate_chorale(page)
    roll = page.locator("#samples canvas.roll")
    box = roll.bounding_box()
    start, end = roll.evaluate("roll => [roll.roll.x(4.2), roll.roll.x(7.8)]")  # inside beats 9 and 16
    page.mouse.move(box["x"] + start, box["y"] + 60)
    page.mouse.down()
    page.mouse.move(box["x"] + end, box["y"] + 90, steps=4)
    page.mouse.up()
    assert page.input_value("#refill-span") == "9-16" and band(page, "#samples", "chosen") == [4, 8]
    border = roll.evaluate("""roll => {  // the chosen span's left edge, above the notes, is drawn in blue
        const ratio = window.devicePixelRatio || 1;
        return [...roll.getContext('2d').getImageData(Math.round(roll.roll.x(4) * ratio), ratio, 1, 1).data];
    }""")
    assert border[2] > 200 and border[0] < 100
    page.fill("#refill-voices", "alto,tenor")
    page.click("#refill-go")
    page.wait_for_selector("#compare:not([hidden]) #compare-new canvas.roll", timeout=90_000)
    assert page.is_hidden("#error") and page.inner_text("#compare-meta") == "beats 9-16 (alto,tenor) drawn again"
    assert band(page, "#compare-original", "chosen") == [4, 8] and band(page, "#compare-new", "refilled") == [4, 8]
    for side in ("#compare-original", "#compare-new"):  # heard and seen, side by side
        assert page.locator(f"{side} audio").count() == 1 and page.locator(f"{side} div.score").count() == 1
    left, right = (page.locator(side).bounding_box() for side in ("#compare-original", "#compare-new"))
    assert left["x"] + left["width"] <= right["x"] and abs(left["y"] - right["y"]) < 5

    page.click("#keep-new")
    page.wait_for_selector("#result:not([hidden]) #samples canvas.roll")
    assert page.inner_text("#version-label") == "version 2 of 2"
    assert "beats 9-16 (alto,tenor) drawn again (best of 8)" in page.inner_text("#result-meta")
    assert band(page, "#samples", "refilled") == [4, 8]  # the new beats stay shaded
    page.click("#version-previous")
    page.wait_for_function("document.querySelector('#version-label').textContent === 'version 1 of 2'")
    refills = page.locator("#history tbody tr:has-text('bach-chorales-small · beats 9-16 (alto,tenor) again')")
    assert refills.count() >= 1


def test_beats_typed_from_the_keyboard_are_shaded_a_bad_span_is_one_line_and_the_original_kept(page):
    generate_chorale(page)
    assert page.inner_text("#refill-unit") == "Beats" and page.is_visible("#refill-voices")
    page.focus("#refill-span")
    page.keyboard.type("9-")
    assert page.inner_text("#refill-problem") == "write the span as 5-8, or one number"
    page.keyboard.type("16")
    assert page.inner_text("#refill-problem") == "" and band(page, "#samples", "chosen") == [4, 8]
    page.fill("#refill-span", "38-44")
    page.keyboard.press("Enter")
    page.wait_for_selector("#error:not([hidden])")
    assert page.inner_text("#error") == "--beats 38-44 lies outside the piece, which has 40 beats (counted from 1)"
    page.fill("#refill-span", "1-4")
    page.keyboard.press("Enter")
    page.wait_for_selector("#compare:not([hidden]) #compare-new canvas.roll", timeout=90_000)
    assert page.is_hidden("#error") and page.evaluate("document.activeElement.id") == "keep-new"
    assert band(page, "#compare-new", "refilled") == [0, 2]
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Enter")  # keep the original
    page.wait_for_selector("#result:not([hidden])")
    assert page.inner_text("#version-label") == "version 1 of 2" and band(page, "#samples", "refilled") is None


def test_seconds_dragged_across_a_midi_pieces_piano_roll_are_drawn_again_and_shaded_where_the_fill_lies(browser,
                                                                                                        tmp_path):
    """A beat-grid model of one's own (none ships): a tiny one trained in seconds continues a band file; a drag
    across the piano roll chooses tenths of seconds, and the fill's band lies on the model's grid."""
    bands = tmp_path / "bands"
    bands.mkdir()
    for seed in range(8):
        (bands / f"band{seed}.mid").write_bytes(band_with_tempo_changes(seed))
    api.train(str(bands), tokenizer="beat", name=str(tmp_path / "runs" / "tiny-beat"), progress=False,
              model={"hidden_size": 32, "num_layers": 1}, steps=20, eval_every=10, batch_size=4, seq_len=32,
              learning_rate=1e-2, threads=1)
    with studio_process(tmp_path / "runs") as (url, _), studio_page(browser, url) as page:
        page.click("#models li[data-model='run:tiny-beat']")
        page.set_input_files("#primer-file", str(bands / "band3.mid"))
        page.wait_for_selector("#upload-chip:not([hidden])")
        page.fill("input[name=length]", "100")
        page.uncheck("#new-seed")
        page.fill("#seed", "1")
        page.click("#generate")
        page.wait_for_selector("#samples canvas.roll.pickable", timeout=90_000)
        assert page.inner_text("#refill-unit") == "Seconds" and page.is_hidden("#refill-voices")
        roll = page.locator("#samples canvas.roll")
        box = roll.bounding_box()
        start, end = roll.evaluate("roll => [roll.roll.x(2.52), roll.roll.x(4.24)]")
        page.mouse.move(box["x"] + start, box["y"] + 60)
        page.mouse.down()
        page.mouse.move(box["x"] + end, box["y"] + 60, steps=4)
        page.mouse.up()
        assert page.input_value("#refill-span") == "2.5-4.3" and band(page, "#samples", "chosen") == [2.5, 4.3]
        page.click("#refill-go")
        page.wait_for_selector("#compare:not([hidden]) #compare-new canvas.roll", timeout=90_000)
        assert page.is_hidden("#error") and page.inner_text("#compare-meta") == "seconds 2.5-4.3 drawn again"
        shaded = band(page, "#compare-new", "refilled")
        assert shaded == band(page, "#compare-original", "chosen") and abs(shaded[0] - 2.5) < 0.2
        page.click("#keep-new")
        page.wait_for_selector("#result:not([hidden]) #samples canvas.roll")
        assert page.inner_text("#version-label") == "version 2 of 2" and band(page, "#samples", "refilled") == shaded
