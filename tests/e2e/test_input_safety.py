"""Local files and arguments that cannot be raced or slipped past: swapped links, growing files, FIFOs, default
directories, NUL bytes, oversized bodies and coerced argument types."""

from __future__ import annotations

import base64
import os
import stat
import sys
import threading
import time
from collections.abc import Callable, Generator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from seedance_mcp.app import create_app
from seedance_mcp.config import Settings
from seedance_mcp.errors import InvalidArgument
from seedance_mcp.media.inputs import MAX_AUDIO_BYTES, MAX_IMAGE_BYTES, resolve_media
from tests.conftest import make_settings, png_bytes, text_of

pytestmark = pytest.mark.anyio

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="symlinks and FIFOs as on POSIX")


@contextmanager
def busy_threads() -> Generator[None]:
    """Switch threads as often as possible, so a race between two threads shows up in a few thousand tries."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


@contextmanager
def swapping(target: Path, makers: list[Callable[[Path], None]]) -> Generator[None]:
    """A thread that keeps atomically replacing `target` with what each maker builds, in turn, until the block ends."""
    stop = threading.Event()

    def run() -> None:
        turn = 0
        while not stop.is_set():
            spare = target.with_name(f".swap-{turn % len(makers)}")
            makers[turn % len(makers)](spare)
            os.replace(spare, target)
            turn += 1

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)


def hard_link_to(source: Path) -> Callable[[Path], None]:
    return lambda spare: os.link(source, spare)


def symlink_to(source: Path) -> Callable[[Path], None]:
    return lambda spare: spare.symlink_to(source)


def url_of(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode()


@posix_only
def test_a_symlink_swapped_in_between_check_and_read_is_never_followed_outside(tmp_path: Path) -> None:
    """Thousands of reads while a thread swaps the allowed file for a link to a secret: the secret is never read."""
    allowed, outside = tmp_path / "allowed", tmp_path / "outside"
    allowed.mkdir()
    outside.mkdir()
    inside_data, secret_data = png_bytes(640, 360), png_bytes(700, 400)
    (allowed / "real.png").write_bytes(inside_data)
    (outside / "secret.png").write_bytes(secret_data)
    target = allowed / "frame.png"
    target.write_bytes(inside_data)
    read_inside = read_outside = 0
    with busy_threads(), swapping(target, [hard_link_to(allowed / "real.png"), symlink_to(outside / "secret.png")]):
        for _ in range(6000):
            try:
                url = resolve_media(str(target), "first_frame", "image", [allowed.resolve()])
            except InvalidArgument:
                continue
            read_inside += url == url_of(inside_data)
            read_outside += url == url_of(secret_data)
    assert read_outside == 0
    assert read_inside > 0


@posix_only
async def test_the_tool_called_while_a_symlink_is_swapped_never_uploads_the_outside_file(tmp_path: Path) -> None:
    """End to end (dry runs): every request body carries the allowed image or the call is refused."""
    allowed, outside = tmp_path / "allowed", tmp_path / "outside"
    allowed.mkdir()
    outside.mkdir()
    inside_data, secret_data = png_bytes(640, 360), png_bytes(1200, 700)
    assert len(inside_data) != len(secret_data)
    (allowed / "real.png").write_bytes(inside_data)
    (outside / "secret.png").write_bytes(secret_data)
    target = allowed / "frame.png"
    target.write_bytes(inside_data)
    sizes: list[str] = []
    settings = make_settings(tmp_path, allowed_dirs=(allowed,))
    with anyio.fail_after(60):
        async with Client(create_app(settings)) as client:
            with (
                busy_threads(),
                swapping(target, [hard_link_to(allowed / "real.png"), symlink_to(outside / "secret.png")]),
            ):
                for _ in range(600):
                    result = await client.call_tool(
                        "generate_video", {"prompt": "a boat", "first_frame": str(target), "dry_run": True}
                    )
                    if not result.is_error:
                        sizes.append((result.structured_content or {})["dry_run_request"]["body"]["content"][1])
    sent = {str(item) for item in sizes}
    assert sent, "no call got through at all"
    assert all(f"<{len(inside_data)} bytes>" in item for item in sent), sent


@posix_only
def test_a_fifo_swapped_in_after_the_check_never_blocks_a_read(tmp_path: Path) -> None:
    """A FIFO raced in between the check and the open is refused at once; no call waits for a writer."""
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    (allowed / "real.png").write_bytes(png_bytes(640, 360))
    pipe = allowed / "pipe"
    os.mkfifo(pipe)
    target = allowed / "frame.png"
    target.write_bytes(png_bytes(640, 360))
    started: list[float] = [time.monotonic()]
    done, blocked = threading.Event(), threading.Event()

    def call_many() -> None:
        for _ in range(8000):
            if blocked.is_set():
                break
            started[0] = time.monotonic()
            with suppress(InvalidArgument):
                resolve_media(str(target), "first_frame", "image", [allowed.resolve()])
        done.set()

    with busy_threads(), swapping(target, [hard_link_to(allowed / "real.png"), hard_link_to(pipe)]):
        caller = threading.Thread(target=call_many, daemon=True)
        caller.start()
        while not done.wait(0.02):
            if time.monotonic() - started[0] > 2.0:  # one small read takes microseconds: this one waits on the FIFO
                blocked.set()
                release_fifo_readers(pipe)
        caller.join(timeout=10)
    assert not blocked.is_set(), "a read blocked on a FIFO"


def release_fifo_readers(pipe: Path) -> None:
    """Open the FIFO for writing and close it again: a reader blocked in open() gets EOF and returns."""
    try:
        fd = os.open(pipe, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        return
    os.close(fd)


@contextmanager
def grows_after_every_size_check(target: Path, small: bytes, extra: int) -> Generator[None]:
    """A writer that always wins the race: `target` is `small` whenever it is stat'ed, `extra` bytes larger when read.

    Every stat of the file (by path or by descriptor) first truncates it to `small` and appends `extra` bytes once
    the size has been taken.
    """
    real_stat, real_fstat = os.stat, os.fstat
    ident = real_stat(target)
    key = (ident.st_dev, ident.st_ino)

    def regrow(result: os.stat_result) -> os.stat_result:
        if (result.st_dev, result.st_ino) != key:
            return result
        with open(target, "r+b") as handle:  # builtin open: it never calls the patched os.stat
            handle.truncate(len(small))
        shrunk = real_stat(target)
        with open(target, "ab") as handle:
            handle.write(bytes(extra))
        return shrunk

    def fake_stat(path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        return regrow(real_stat(path, *args, **kwargs))

    def fake_fstat(fd: int) -> os.stat_result:
        return regrow(real_fstat(fd))

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "stat", fake_stat)
        patch.setattr(os, "fstat", fake_fstat)
        yield


@pytest.mark.parametrize(
    ("kind", "name", "limit"), [("audio", "voice.wav", MAX_AUDIO_BYTES), ("image", "big.png", MAX_IMAGE_BYTES)]
)
def test_a_file_grown_after_its_size_check_is_refused_not_read_whole(
    tmp_path: Path, kind: str, name: str, limit: int
) -> None:
    """The read is bounded by the limit, whatever the earlier size check saw."""
    small = png_bytes(640, 360) if kind == "image" else b"RIFF" + bytes(40)
    target = tmp_path / name
    target.write_bytes(small)
    with grows_after_every_size_check(target, small, limit + 1024), pytest.raises(InvalidArgument) as caught:
        resolve_media(str(target), "first_frame", kind, [tmp_path.resolve()])  # type: ignore[arg-type]
    assert caught.value.argument == "first_frame"
    assert "MB" in str(caught.value)


@posix_only
async def test_a_fifo_path_is_refused_promptly_and_the_server_keeps_answering(tmp_path: Path) -> None:
    """Fifty concurrent calls naming a FIFO are each refused at once; later calls of every tool still work."""
    pipe = tmp_path / "frame.png"
    os.mkfifo(pipe)
    assert stat.S_ISFIFO(pipe.stat().st_mode)
    results: list[Any] = []
    with anyio.fail_after(20):
        async with Client(create_app(make_settings(tmp_path))) as client:

            async def call() -> None:
                results.append(await client.call_tool("generate_video", {"prompt": "x", "first_frame": str(pipe)}))

            async with anyio.create_task_group() as group:
                for _ in range(50):
                    group.start_soon(call)
            later = await client.call_tool("list_models", {})
            dry = await client.call_tool("generate_video", {"prompt": "a boat", "dry_run": True})
    assert len(results) == 50
    assert all(r.is_error and "not a regular file" in text_of(r) for r in results)
    assert later.is_error is False and dry.is_error is False


def default_settings(tmp_path: Path) -> Settings:
    """Settings as a user gets them: no SEEDANCE_ALLOWED_DIRS."""
    return Settings(provider="sandbox", output_dir=tmp_path / "videos", state_dir=tmp_path / "state")


@pytest.mark.parametrize("where", ["/", "home", "above home"])
def test_by_default_a_root_or_home_working_directory_is_not_readable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """Claude Desktop starts servers in `/`: the default must not open the disk, the home or an ancestor of it."""
    home = tmp_path / "home" / "me"
    home.mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir({"/": Path("/"), "home": home, "above home": tmp_path / "home"}[where])
    settings = default_settings(tmp_path)
    dirs = settings.readable_dirs()
    assert dirs == ((tmp_path / "videos" / "inputs").resolve(), (tmp_path / "videos").resolve())


def test_by_default_an_ordinary_working_directory_stays_readable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A project directory below home is still a default, after the inputs and output directories."""
    project = tmp_path / "home" / "me" / "project"
    project.mkdir(parents=True)
    monkeypatch.setenv("HOME", str(tmp_path / "home" / "me"))
    monkeypatch.chdir(project)
    assert default_settings(tmp_path).readable_dirs()[-1] == project.resolve()


def test_explicit_allowed_dirs_are_honoured_as_given_and_the_inputs_dir_is_made_only_when_needed(
    tmp_path: Path,
) -> None:
    """SEEDANCE_ALLOWED_DIRS replaces the defaults, even `/`; the inputs directory is created on first use only."""
    explicit = Settings(output_dir=tmp_path / "videos", allowed_dirs=(Path("/"), tmp_path))
    assert explicit.readable_dirs() == (Path("/"), tmp_path.resolve())
    settings = default_settings(tmp_path)
    assert settings.inputs_dir == tmp_path / "videos" / "inputs"
    assert not settings.inputs_dir.exists()
    settings.readable_dirs()
    assert settings.inputs_dir.is_dir()
    assert Settings(inputs_dir=tmp_path / "drop").inputs_dir == tmp_path / "drop"


async def test_a_file_outside_the_defaults_is_refused_saying_where_to_copy_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Started in `/`, the server refuses any file elsewhere and names the inputs dir and SEEDANCE_ALLOWED_DIRS."""
    monkeypatch.chdir("/")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    image = elsewhere / "cat.png"
    image.write_bytes(png_bytes(640, 360))
    settings = default_settings(tmp_path).model_copy(update={"sandbox_render_seconds": 0.1})
    inputs = (tmp_path / "videos" / "inputs").resolve()
    async with Client(create_app(settings)) as client:
        refused = await client.call_tool("generate_video", {"prompt": "x", "first_frame": str(image), "dry_run": True})
        (inputs / "cat.png").write_bytes(image.read_bytes())
        copied = await client.call_tool(
            "generate_video", {"prompt": "x", "first_frame": str(inputs / "cat.png"), "dry_run": True}
        )
    message = text_of(refused)
    assert refused.is_error is True and "outside the directories" in message
    assert f"Copy the file into {inputs}" in message
    assert "SEEDANCE_ALLOWED_DIRS" in message and repr(os.pathsep) in message
    assert copied.is_error is False, text_of(copied)


async def test_a_nul_byte_in_a_path_is_refused_naming_the_argument(tmp_path: Path) -> None:
    """A clear InvalidArgument, not a bare error without a message."""
    async with Client(create_app(make_settings(tmp_path))) as client:
        result = await client.call_tool("generate_video", {"prompt": "x", "first_frame": f"{tmp_path}/a\x00.png"})
    assert result.is_error is True
    assert "Invalid argument `first_frame`" in text_of(result) and "NUL" in text_of(result)


async def test_files_adding_up_to_a_body_over_64_mb_are_refused_before_sending(tmp_path: Path) -> None:
    """Three 18 MB images are each allowed, but their base64 body is not: the biggest is named."""
    paths: list[str] = []
    for index, padding in enumerate((18, 19, 18)):
        data = bytearray(png_bytes(640, 360))
        # a private ancillary chunk before IEND: a valid, complete PNG that is simply large
        filler = bytes(padding * 1024 * 1024)
        chunk = len(filler).to_bytes(4, "big") + b"prVt" + filler + bytes(4)
        data[-12:-12] = chunk
        path = tmp_path / f"ref{index}.png"
        path.write_bytes(bytes(data))
        paths.append(str(path))
    async with Client(create_app(make_settings(tmp_path))) as client:
        result = await client.call_tool(
            "generate_video", {"prompt": "x", "model": "2.0", "reference_images": paths, "dry_run": True}
        )
        one = await client.call_tool(
            "generate_video", {"prompt": "x", "model": "2.0", "reference_images": paths[:1], "dry_run": True}
        )
    assert result.is_error is True
    assert "Invalid argument `reference_images[1]`" in text_of(result) and "64 MB" in text_of(result)
    assert one.is_error is False, text_of(one)


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        ({"seed": True}, "seed"),
        ({"duration": "5"}, "duration"),
        ({"draft": "yes"}, "draft"),
        ({"seed": 5.0}, "seed"),
    ],
)
async def test_argument_types_are_not_coerced(tmp_path: Path, arguments: dict[str, Any], named: str) -> None:
    """`seed: true`, `duration: "5"`, `draft: "yes"` are refused naming the argument, not silently converted."""
    async with Client(create_app(make_settings(tmp_path))) as client:
        result = await client.call_tool("generate_video", {"prompt": "x", "dry_run": True, **arguments})
    assert result.is_error is True
    assert named in text_of(result)


async def test_strict_arguments_keep_the_same_schema_shape(tmp_path: Path) -> None:
    """Strictness changes validation only: integers and booleans are still plain `integer`/`boolean` (or null)."""
    async with Client(create_app(make_settings(tmp_path))) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    properties = tools["generate_video"].input_schema["properties"]
    for name in ("duration", "frames", "seed"):
        assert properties[name]["type"] == ["integer", "null"], name
    for name in ("camera_fixed", "watermark", "generate_audio", "draft", "return_last_frame"):
        assert properties[name]["type"] == ["boolean", "null"], name
    for name in ("wait", "dry_run", "force_new"):
        assert properties[name]["type"] == "boolean" and "anyOf" not in properties[name], name
    assert properties["seed"]["description"] == "-1 random, or 0-4294967295."
