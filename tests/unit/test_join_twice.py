"""Two joins of one film at once (two calls of one plan in one process, or a call and the plan's runner) each write
a partial file of their own and rename it over the film: the film is always one whole MP4, nothing half-written is
left beside it."""

from __future__ import annotations

import threading
from pathlib import Path

import av

from seedance_mcp.media.join import join
from seedance_mcp.sandbox.clips import make_clip


def test_two_joins_of_one_film_at_once_leave_one_whole_film(tmp_path: Path) -> None:
    paths = []
    for index, frames in enumerate((48, 72)):
        path = tmp_path / f"shot-{index}.mp4"
        path.write_bytes(make_clip(f"shot-{index}", frames, "16:9", audio=True).mp4)
        paths.append(path)
    film = tmp_path / "sb-film.mp4"
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def run() -> None:
        start.wait()
        try:
            join(paths, film)
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    for _ in range(3):
        threads = [threading.Thread(target=run) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert errors == []
        with av.open(str(film)) as container:
            stream = container.streams.video[0]
            assert stream.duration is not None and stream.time_base is not None
            assert float(stream.duration * stream.time_base) == 5.0
            assert sum(1 for _ in container.decode(stream)) == 120
        assert sorted(p.name for p in tmp_path.iterdir()) == ["sb-film.mp4", "shot-0.mp4", "shot-1.mp4"]
