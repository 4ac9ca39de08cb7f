"""The supervisor's pages and API: the wallboard, major-incident messages and report downloads.

Every route here needs a supervisor's session (403 otherwise); changes also need the CSRF
token. Publishing calls the same code as `telephony message publish` and is audited as a
ConsoleAction by the supervisor's name.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import BaseModel, Field

from telephony.config import Config
from telephony.console.accounts import Role
from telephony.console.actions import Actions
from telephony.console.auth import COOKIE, WebSession, changing, current
from telephony.console.live import Hub
from telephony.console.wallboard import Wallboard
from telephony.console.words import page_words
from telephony.errors import TelephonyError
from telephony.messages import store
from telephony.messages.area import Area
from telephony.reports.formats import MEDIA_TYPES, render

router = APIRouter()
MessageId = Annotated[int, Path(ge=1, le=2**31 - 1)]
RegencyCode = Annotated[str, Query(pattern=r"^[0-9]{2}\.[0-9]{2}$")]

WALLBOARD_LABELS: dict[str, dict[str, str]] = {
    "wallboard": {"id": "Papan pantau 112", "en": "112 wallboard"},
    "waiting": {"id": "Menunggu", "en": "Waiting"},
    "longest": {"id": "Terlama", "en": "Longest"},
    "free": {"id": "Siap", "en": "Free"},
    "on-call": {"id": "Menelepon", "en": "On call"},
    "abandoned": {"id": "Ditutup penelepon", "en": "Abandoned"},
    "within": {"id": "Dijawab dalam", "en": "Answered within"},
    "target": {"id": "target", "en": "target"},
    "pending-callbacks": {"id": "Panggilan balik tertunda", "en": "Callbacks pending"},
    "messages": {"id": "Pesan insiden besar", "en": "Major-incident messages"},
    "no-message": {"id": "Tidak ada pesan aktif", "en": "No active message"},
    "heard": {"id": "Mendengar", "en": "Heard"},
    "hung-up-after": {"id": "Menutup setelah mendengar", "en": "Hung up after hearing"},
    "per-minute": {"id": "Panggilan/menit dari area", "en": "Calls/min from the area"},
    "until": {"id": "Sampai", "en": "Until"},
    "incidents": {"id": "Insiden terbuka per instansi", "en": "Open incidents by agency"},
    "no-incidents": {"id": "Tidak ada insiden terbuka yang diserahkan",
                     "en": "No open incident handed off"},
    "unacknowledged": {"id": "belum dikonfirmasi", "en": "not acknowledged"},
    "since-dispatch": {"id": "sejak diserahkan", "en": "since dispatch"},
    "unmatched-fixes": {"id": "Lokasi perangkat tanpa panggilan",
                        "en": "Handset fixes matching no call"},
    "no-unmatched": {"id": "Tidak ada", "en": "None"},
    "dispatched": {"id": "Dikirim", "en": "Dispatched"},
    "acknowledged": {"id": "Diterima", "en": "Acknowledged"},
    "en-route": {"id": "Dalam perjalanan", "en": "En route"},
    "on-scene": {"id": "Di lokasi", "en": "On scene"},
    "chart": {"id": "Panggilan per jam: hari ini dan minggu lalu",
              "en": "Calls per hour: today and the same day last week"},
    "publish": {"id": "Terbitkan", "en": "Publish"},
    "expire": {"id": "Akhiri", "en": "End"},
    "regencies-field": {"id": "Kode kabupaten/kota (koma)", "en": "Regency codes (comma)"},
    "circle-field": {"id": "atau lingkaran: LAT,LON,RADIUS_M",
                     "en": "or a circle: LAT,LON,RADIUS_M"},
    "minutes": {"id": "Menit", "en": "Minutes"},
    "text-id": {"id": "Teks (Bahasa Indonesia)", "en": "Text (Indonesian)"},
    "text-en": {"id": "Teks (Inggris, opsional)", "en": "Text (English, optional)"},
    "report": {"id": "Unduh laporan", "en": "Download report"},
}


def supervisor(session: Annotated[WebSession, Depends(current)]) -> WebSession:
    if session.account.role is not Role.SUPERVISOR:
        raise HTTPException(403, "supervisors only")
    return session


def supervisor_changing(session: Annotated[WebSession, Depends(changing)]) -> WebSession:
    return supervisor(session)


Reader = Annotated[WebSession, Depends(supervisor)]
Changer = Annotated[WebSession, Depends(supervisor_changing)]


def _hub(request: Request) -> Hub:
    hub: Hub = request.app.state.hub
    return hub


def _wallboard(request: Request) -> Wallboard:
    board: Wallboard = request.app.state.wallboard
    return board


def _config(request: Request) -> Config:
    config: Config = request.app.state.config
    return config


class PublishRequest(BaseModel):
    text_id: str = Field(min_length=1, max_length=store.TEXT_MAX)
    text_en: str = Field(default="", max_length=store.TEXT_MAX)
    regencies: list[Annotated[str, Field(pattern=r"^[0-9]{2}\.[0-9]{2}$")]] = Field(
        default_factory=list, max_length=50)
    lat: float | None = None
    lon: float | None = None
    radius_m: float | None = None
    minutes: int = Field(ge=1, le=24 * 60)


@router.get("/wallboard", response_class=HTMLResponse, include_in_schema=False)
def wallboard_page(request: Request) -> Response:
    sessions = request.app.state.sessions
    session = sessions.get(request.cookies.get(COOKIE))
    if session is None:
        return RedirectResponse("/login", status_code=303)
    if session.account.role is not Role.SUPERVISOR:
        raise HTTPException(403, "supervisors only")
    words = page_words()
    words["labels"] = {**words["labels"], **WALLBOARD_LABELS}  # type: ignore[dict-item]
    templates = request.app.state.templates
    page: Response = templates.TemplateResponse(
        request, "wallboard.html", {"settings": json.dumps({"words": words})})
    return page


@router.get("/api/wallboard")
def wallboard(request: Request, session: Reader) -> dict[str, object]:
    return _wallboard(request).build()


@router.get("/api/wallboard/chart.svg", response_class=Response)
def chart(request: Request, session: Reader) -> Response:
    return Response(_wallboard(request).chart(), media_type="image/svg+xml")


@router.get("/api/messages")
def message_list(request: Request, session: Reader) -> list[dict[str, object]]:
    return [store.as_dict(m) for m in store.listing(_hub(request).engine)[:50]]


@router.post("/api/messages", responses={403: {}, 422: {}, 503: {}})
def message_publish(request: Request, body: PublishRequest,
                    session: Changer) -> dict[str, object]:
    actions: Actions = request.app.state.actions
    try:
        area = Area(regencies=frozenset(body.regencies)) if body.regencies else \
            Area(lat=body.lat, lon=body.lon, radius_m=body.radius_m)
        row = store.publish(_hub(request).engine, _config(request),
                            store.Draft(body.text_id, body.text_en, area, body.minutes),
                            session.account.name)
    except TelephonyError as exc:
        raise HTTPException(422, str(exc)) from exc
    actions.audit(session.account.name, "message-publish", MessageId=str(row.id),
                  Area=area.describe())
    return store.as_dict(row)


@router.post("/api/messages/{message_id}/expire", responses={403: {}, 409: {}})
def message_expire(request: Request, message_id: MessageId,
                   session: Changer) -> dict[str, object]:
    actions: Actions = request.app.state.actions
    try:
        row = store.expire(_hub(request).engine, message_id, session.account.name)
    except store.MessageError as exc:
        raise HTTPException(409, str(exc)) from exc
    actions.audit(session.account.name, "message-expire", MessageId=str(row.id))
    return store.as_dict(row)


@router.get("/api/reports", response_class=Response, responses={403: {}, 404: {}})
def report(request: Request, session: Reader, regency: RegencyCode,
           date_from: Annotated[date, Query(alias="from")],
           date_to: Annotated[date, Query(alias="to")],
           fmt: Annotated[Literal["html", "csv", "json"], Query(alias="format")] = "html",
           ) -> Response:
    found = _hub(request).regions.regencies.get(regency)
    if found is None:
        raise HTTPException(404, f"no regency {regency}")
    if date_to < date_from or (date_to - date_from).days > 366:
        raise HTTPException(422, "the days must run forward, at most a year")
    text = render(_hub(request).engine, _config(request), regency, found.name, date_from,
                  date_to, fmt)
    name = f"laporan-112-{regency}-{date_from}-{date_to}.{fmt}"
    return Response(text, media_type=MEDIA_TYPES[fmt],
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
