from __future__ import annotations

from pathlib import Path

import pytest

from telephony.location.region import RegionDataError, Regions, load_regions, queue_name

REGIONS_FILE = Path(__file__).resolve().parents[2] / "config" / "regions.toml"

KEMENDAGRI = {
    "35.01": "Kabupaten Pacitan", "35.02": "Kabupaten Ponorogo",
    "35.03": "Kabupaten Trenggalek", "35.04": "Kabupaten Tulungagung",
    "35.05": "Kabupaten Blitar", "35.06": "Kabupaten Kediri", "35.07": "Kabupaten Malang",
    "35.08": "Kabupaten Lumajang", "35.09": "Kabupaten Jember",
    "35.10": "Kabupaten Banyuwangi", "35.11": "Kabupaten Bondowoso",
    "35.12": "Kabupaten Situbondo", "35.13": "Kabupaten Probolinggo",
    "35.14": "Kabupaten Pasuruan", "35.15": "Kabupaten Sidoarjo",
    "35.16": "Kabupaten Mojokerto", "35.17": "Kabupaten Jombang",
    "35.18": "Kabupaten Nganjuk", "35.19": "Kabupaten Madiun", "35.20": "Kabupaten Magetan",
    "35.21": "Kabupaten Ngawi", "35.22": "Kabupaten Bojonegoro", "35.23": "Kabupaten Tuban",
    "35.24": "Kabupaten Lamongan", "35.25": "Kabupaten Gresik",
    "35.26": "Kabupaten Bangkalan", "35.27": "Kabupaten Sampang",
    "35.28": "Kabupaten Pamekasan", "35.29": "Kabupaten Sumenep",
    "35.71": "Kota Kediri", "35.72": "Kota Blitar", "35.73": "Kota Malang",
    "35.74": "Kota Probolinggo", "35.75": "Kota Pasuruan", "35.76": "Kota Mojokerto",
    "35.77": "Kota Madiun", "35.78": "Kota Surabaya", "35.79": "Kota Batu",
}
LAUNCH = {
    "35.10", "35.13", "35.74", "35.73", "35.05", "35.72", "35.75", "35.77", "35.16", "35.76",
    "35.17", "35.15", "35.78", "35.25", "35.29", "35.79", "35.14", "35.07", "35.21", "35.12",
    "35.08",
}


@pytest.fixture(scope="module")
def regions() -> Regions:
    return load_regions(REGIONS_FILE)


def test_codes_and_names_follow_kemendagri(regions: Regions) -> None:
    assert regions.province_code == "35"
    assert {code: r.name for code, r in regions.regencies.items()} == KEMENDAGRI


def test_launch_list(regions: Regions) -> None:
    assert {code for code, r in regions.regencies.items() if r.launch} == LAUNCH


def test_neighbours_are_closed_and_symmetric(regions: Regions) -> None:
    for code, regency in regions.regencies.items():
        assert regency.neighbours, code
        for other in regency.neighbours:
            assert code in regions.regencies[other].neighbours


def test_every_point_lies_in_east_java(regions: Regions) -> None:
    for regency in regions.regencies.values():
        for point in regency.points:
            assert -9.0 < point.lat < -5.0 and 110.8 < point.lon < 116.5, (regency.code, point)


@pytest.mark.parametrize(
    ("place", "lat", "lon", "code"),
    [
        ("Tugu Pahlawan, Surabaya", -7.2458, 112.7378, "35.78"),
        ("Alun-alun Malang", -7.9826, 112.6308, "35.73"),
        ("Alun-alun Batu", -7.8716, 112.5265, "35.79"),
        ("Juanda airport", -7.3798, 112.7868, "35.15"),
        ("Alun-alun Gresik", -7.1566, 112.6555, "35.25"),
        ("Kota Mojokerto", -7.4705, 112.4336, "35.76"),
        ("Trowulan", -7.5590, 112.3830, "35.16"),
        ("Madiun station", -7.6177, 111.5232, "35.77"),
        ("Ketapang ferry port", -8.1430, 114.3980, "35.10"),
        ("Masalembu island", -5.5800, 114.4300, "35.29"),
        ("Bawean island", -5.8500, 112.6500, "35.25"),
    ],
)
def test_landmarks(regions: Regions, place: str, lat: float, lon: float, code: str) -> None:
    seat = regions.nearest(lat, lon, 20)
    assert seat is not None, place
    assert seat.regency.code == code, place


def test_gunung_bromo(regions: Regions) -> None:
    """Bromo's caldera is shared by Kab. Probolinggo, Pasuruan, Malang and Lumajang.

    Without boundary polygons the nearest seat decides: the crater with a GPS fix goes to
    Kab. Probolinggo (Ngadisari, the village on the rim); with a cell-sized uncertainty
    the neighbours on the other sides of the caldera become alternatives and the answer is
    ambiguous, which the resolver reports as low confidence.
    """
    crater = regions.nearest(-7.942, 112.953, 30)
    assert crater is not None
    assert crater.regency.code == "35.13"
    assert not crater.ambiguous

    coarse = regions.nearest(-7.942, 112.953, 3000)
    assert coarse is not None and coarse.regency.code == "35.13" and coarse.ambiguous
    assert {"35.14", "35.08"} <= set(coarse.alternatives)

    # The Penanjakan viewpoint on the Pasuruan side is a toss-up between two seats.
    penanjakan = regions.nearest(-7.900, 112.935, 30)
    assert penanjakan is not None and penanjakan.ambiguous
    assert {penanjakan.regency.code, *penanjakan.alternatives} >= {"35.13", "35.14"}

    # The sand sea south-west of the crater reaches towards Malang and Lumajang.
    sand_sea = regions.nearest(-7.975, 112.915, 1000)
    assert sand_sea is not None and sand_sea.ambiguous
    assert {sand_sea.regency.code, *sand_sea.alternatives} >= {"35.07", "35.08"}


def test_far_positions_are_not_resolved(regions: Regions) -> None:
    assert regions.nearest(-6.2088, 106.8456) is None  # Jakarta
    assert regions.nearest(float("nan"), 112.7) is None


def test_queue_names(regions: Regions) -> None:
    assert queue_name("35.07") == "reg-3507"
    assert queue_name("35.78") == "reg-3578"
    assert queue_name("35") == "prov-35"
    with pytest.raises(ValueError):
        queue_name("3507")
    assert regions.queue_for("35.07") == "reg-3507"
    assert regions.queue_for("35.09") == "prov-35"  # Jember is not launched
    assert regions.queue_for(None) == "prov-35"


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "regions.toml"
    path.write_text('[province]\ncode = "35"\nname = "Jawa Timur"\n' + body)
    return path


A = '[[regency]]\ncode = "35.01"\nname = "A"\npoints = [{name="a", lat=-8.2, lon=111.1}]\n'


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (A + 'neighbours = ["35.02"]\n', "unknown neighbour 35.02"),
        (A + 'neighbours = ["35.02"]\n[[regency]]\ncode = "35.02"\nname = "B"\n'
         'points = [{name="b", lat=-7.8, lon=111.4}]\n', "does not list it back"),
        (A + A, "listed twice"),
        ('[[regency]]\ncode = "36.01"\nname = "X"\npoints = [{name="x", lat=-8, lon=111}]\n',
         "code must look like 35.NN"),
        ('[[regency]]\ncode = "35.01"\nname = "X"\npoints = []\n', "at least one point"),
        ('[[regency]]\ncode = "35.01"\nname = "X"\npoints = [{name="x", lat=-98, lon=111}]\n',
         "not a valid position"),
        ("this is = not toml [", "regions.toml"),
    ],
)
def test_bad_region_files(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(RegionDataError, match=message):
        load_regions(_write(tmp_path, body))


def test_missing_region_file(tmp_path: Path) -> None:
    with pytest.raises(RegionDataError):
        load_regions(tmp_path / "absent.toml")
