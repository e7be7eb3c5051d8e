"""Result images: download to a file or a directory, read into memory, READ retries."""

from __future__ import annotations

from pathlib import Path

import pytest

import mjasync
from tests.conftest import BASE_URL, MockedHTTP

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8
WEBP = b"RIFF\x00\x00\x00\x00WEBPVP8 "
URL = "https://cdn.example/attachments/1/2/cat_grid_0.png?ex=683142b8&is=682ff138&hm=abc"


def names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def done(url: str | None = URL, status: str = "SUCCESS") -> mjasync.TaskInfo:
    return mjasync.TaskInfo(id="1730621826053455", status=mjasync.TaskStatus(status), image_url=url)


async def test_download_into_a_directory_names_the_file_after_the_task(
    http: MockedHTTP, client: mjasync.Client, tmp_path: Path
) -> None:
    http.get(URL, body=PNG)
    path = await client.download(done(), tmp_path)
    assert path == tmp_path / "1730621826053455.png"
    assert path.read_bytes() == PNG
    assert names(tmp_path) == [path.name], "no temporary file left behind"


async def test_download_to_a_file_path_and_a_new_directory(
    http: MockedHTTP, client: mjasync.Client, tmp_path: Path
) -> None:
    http.get(URL, body=WEBP, repeat=True)
    target = tmp_path / "deep" / "fox.webp"
    assert await client.download(done(), target) == target
    assert target.read_bytes() == WEBP
    into = await client.download(done(), f"{tmp_path}/new-dir/")
    assert into == tmp_path / "new-dir" / "1730621826053455.webp"


async def test_download_of_a_bare_url_uses_its_file_name(
    http: MockedHTTP, client: mjasync.Client, tmp_path: Path
) -> None:
    http.get(URL, body=PNG)
    assert (await client.download(URL, tmp_path)).name == "cat_grid_0.png"


async def test_download_retries_reads(http: MockedHTTP, client: mjasync.Client, tmp_path: Path) -> None:
    http.get(URL, status=503)
    http.get(URL, body=PNG)
    path = await client.download(done(), tmp_path)
    assert path.read_bytes() == PNG and client.stats.retries == 1


async def test_a_failed_download_leaves_no_file(http: MockedHTTP, client: mjasync.Client, tmp_path: Path) -> None:
    http.get(URL, status=403, body="This content is no longer available.", repeat=True)
    with pytest.raises(mjasync.AuthenticationError):
        await client.download(done(), tmp_path)
    assert names(tmp_path) == []


async def test_task_download_fetches_unless_success_was_seen(
    http: MockedHTTP, client: mjasync.Client, tmp_path: Path
) -> None:
    http.get(BASE_URL + "/mj/task/7/fetch", payload={"id": "7", "status": "SUCCESS", "imageUrl": URL})
    http.get(URL, body=PNG, repeat=True)
    handle = client.task("7")
    assert (await handle.download(tmp_path)).name == "7.png"
    assert await client.read_image(handle) == PNG
    assert len(http.calls("GET", "/mj/task/7/fetch")) == 1, "the second call used the SUCCESS snapshot"


@pytest.mark.parametrize(
    "info", [done(url=None), done(url=None, status="IN_PROGRESS"), done(status="IN_PROGRESS")],
    ids=["success-without-url", "running", "running-with-a-preview"],
)
async def test_no_result_image_yet_is_a_clear_error(
    http: MockedHTTP, client: mjasync.Client, tmp_path: Path, info: mjasync.TaskInfo
) -> None:
    with pytest.raises(mjasync.InvalidRequestError, match="no result image"):
        await client.download(info, tmp_path)
    assert http.requests == {}


def test_image_urls_come_from_the_extended_field() -> None:
    info = mjasync.TaskInfo(
        id="1", extra={"imageUrls": [{"url": "https://cdn.midjourney.com/x/0_0.png"}, {"url": ""}, "junk", 5]}
    )
    assert info.image_urls == ("https://cdn.midjourney.com/x/0_0.png", "junk")
    assert mjasync.TaskInfo(id="1").image_urls == ()
