"""An incident as JSON borrowing NENA EIDO's names (NENA-STA-021), locations as PIDF-LO (pure).

EIDO is a JSON exchange of incident components; we borrow its top-level names
(``eidoMessageIdentifier``, ``$id``, ``sendingSystemIdentifier``, ``lastUpdateTimeStamp``,
``messageKind``) and its components (``incidentComponent``, ``callComponent``,
``locationComponent``, ``agencyComponent``, ``notesComponent``, ``personComponent``) with
their common fields where they fit, and keep our own names for what EIDO has no field for.
Each location goes by value as a PIDF-LO document (RFC 4119 with RFC 5491 shapes): the
caller's as the network or handset gave it, and the operator's map point beside it.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime
from typing import Any

from telephony.audit.chain import iso_time
from telephony.incidents.record import IncidentRecord

NS = {"": "urn:ietf:params:xml:ns:pidf", "gp": "urn:ietf:params:xml:ns:pidf:geopriv10",
      "gml": "http://www.opengis.net/gml", "gs": "http://www.opengis.net/pidflo/1.0",
      "dm": "urn:ietf:params:xml:ns:pidf:data-model"}
_SRS = "urn:ogc:def:crs:EPSG::4326"
_METRE = "urn:ogc:def:uom:EPSG::9001"
STATUS_TEXT = {"created": "Received", "dispatched": "Dispatched", "acknowledged": "Acknowledged",
               "en-route": "Enroute", "on-scene": "OnScene", "closed": "Closed"}


def _q(prefix: str, name: str) -> str:
    return f"{{{NS[prefix]}}}{name}"


def pidf_lo(entity: str, lat: float, lon: float, radius_m: float | None, method: str,
            at: datetime) -> str:
    """A PIDF-LO with one geodetic shape: a Circle when the uncertainty is known, else a Point.

    It always carries <usage-rules> (retransmission not allowed), which RFC 4119 requires and
    without which some receivers (Asterisk 22.10.1 among them) misbehave.
    """
    for prefix, uri in NS.items():
        ET.register_namespace(prefix, uri)
    root = ET.Element(_q("", "presence"), {"entity": entity})
    device = ET.SubElement(root, _q("dm", "device"), {"id": "location"})
    geopriv = ET.SubElement(device, _q("gp", "geopriv"))
    info = ET.SubElement(geopriv, _q("gp", "location-info"))
    position = f"{lat:.6f} {lon:.6f}"
    if radius_m is not None and radius_m > 0:
        circle = ET.SubElement(info, _q("gs", "Circle"), {"srsName": _SRS})
        ET.SubElement(circle, _q("gml", "pos")).text = position
        ET.SubElement(circle, _q("gs", "radius"), {"uom": _METRE}).text = f"{radius_m:.0f}"
    else:
        point = ET.SubElement(info, _q("gml", "Point"), {"srsName": _SRS})
        ET.SubElement(point, _q("gml", "pos")).text = position
    rules = ET.SubElement(geopriv, _q("gp", "usage-rules"))
    ET.SubElement(rules, _q("gp", "retransmission-allowed")).text = "no"
    ET.SubElement(geopriv, _q("gp", "method")).text = method
    ET.SubElement(device, _q("dm", "timestamp")).text = iso_time(at)
    return ET.tostring(root, encoding="unicode", xml_declaration=False)


def _method(source: str) -> str:
    return {"pidf-lo": "GPS", "cell": "Cell", "pani": "Cell"}.get(source, source or "Cell")


def _locations(incident: IncidentRecord, system: str) -> list[dict[str, Any]]:
    found = []
    if incident.caller_lat is not None and incident.caller_lon is not None:
        found.append({
            "componentIdentifier": f"loc-caller-{incident.uuid}",
            "locationTypeDescription": "caller",
            "locationByValue": pidf_lo(f"pres:incident-{incident.uuid}@{system}",
                                       incident.caller_lat, incident.caller_lon,
                                       incident.caller_radius_m,
                                       _method(incident.caller_source), incident.created_at),
        })
    if incident.lat is not None and incident.lon is not None:
        found.append({
            "componentIdentifier": f"loc-incident-{incident.uuid}",
            "locationTypeDescription": "incident",
            "locationByValue": pidf_lo(f"pres:incident-{incident.uuid}@{system}", incident.lat,
                                       incident.lon, None, "Manual", incident.updated_at),
        })
    return found


def eido(incident: IncidentRecord, system: str, kind: str = "Report") -> dict[str, Any]:
    """The incident as one EIDO-shaped JSON object; ``system`` names the sending centre."""
    locations = _locations(incident, system)
    updated = iso_time(incident.updated_at)
    notes = [{"componentIdentifier": f"note-{incident.uuid}-{n}",
              "noteDateTimeStamp": iso_time(e.at), "noteText": str(e.detail.get("text", "")),
              "authorReference": e.user, "regency": e.regency_code, "agency": e.agency_id}
             for n, e in enumerate(incident.timeline) if e.kind == "note"]
    return {
        "eidoMessageIdentifier": f"urn:uuid:{incident.uuid}",
        "$id": f"urn:uuid:{incident.uuid}",
        "sendingSystemIdentifier": system,
        "lastUpdateTimeStamp": updated,
        "messageKind": kind,
        "incidentComponent": [{
            "componentIdentifier": f"inc-{incident.uuid}",
            "incidentTrackingIdentifier": str(incident.id),
            "lastUpdateTimeStamp": updated,
            "incidentCreationTimeStamp": iso_time(incident.created_at),
            "incidentTypeCommonRegistryText": incident.type,
            "incidentSubtype": incident.subtype,
            "incidentStatusCommonRegistryText": STATUS_TEXT[incident.status],
            "incidentPriority": incident.priority,
            "narrative": incident.narrative,
            "addressOrLandmark": incident.address,
            "regency": incident.regency_code,
            "sharedWithRegencies": list(incident.shared_with),
            "locationReference": [loc["componentIdentifier"] for loc in locations],
            "callReference": [f"call-{linkedid}" for linkedid in incident.calls],
        }],
        "callComponent": [{"componentIdentifier": f"call-{linkedid}", "callIdentifier": linkedid}
                          for linkedid in incident.calls],
        "callbackNumber": incident.number,
        "locationComponent": locations,
        "personComponent": ([{"componentIdentifier": f"person-{incident.uuid}",
                              "personDescription": incident.people}] if incident.people else []),
        "agencyComponent": [{"componentIdentifier": f"agency-{h.agency_id}",
                             "agencyIdentifier": h.agency_id,
                             "incidentStatusCommonRegistryText": STATUS_TEXT[h.status],
                             "dispatchTimeStamp": iso_time(h.dispatched_at)}
                            for h in incident.handoffs],
        "notesComponent": notes,
    }
