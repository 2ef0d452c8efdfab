"""Real web map servers on 127.0.0.1 for the web-layer tests: an XYZ tile folder made with gdal2tiles.py and
served by Python's http.server, and QGIS Server's development server (qgis_mapserver) publishing a project."""

from __future__ import annotations

import functools
import http.client
import http.server
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable, Iterator, List, Optional

QGIS_MAPSERVER = shutil.which("qgis_mapserver") or "/usr/bin/qgis_mapserver"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def make_tiles(raster: Path, folder: Path, zooms: str) -> Path:
    """An XYZ tile folder (``{z}/{x}/{y}.png``, no TMS y flip) of ``raster`` at ``zooms`` (e.g. "18-21")."""
    done = subprocess.run(["gdal2tiles.py", "--xyz", "-z", zooms, "-w", "none", "-q", str(raster), str(folder)],
                          capture_output=True, text=True, check=False, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return folder


class TileServer:
    """A folder over HTTP on 127.0.0.1 (a thread); ``on_request`` callbacks see every requested path."""

    def __init__(self, folder: Path) -> None:
        self.on_request: List[Callable[[str], None]] = []
        self.requests: List[str] = []
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append(self.path)
                for callback in list(server.on_request):
                    callback(self.path)
                super().do_GET()

            def log_message(self, *args: object) -> None:
                pass

        self.port = free_port()
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port),
                                                     functools.partial(Handler, directory=str(folder)))
        self.httpd.handle_error = lambda *args: None  # a request QGIS abandoned (a cancel): no traceback
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def wms_project(raster: Path, path: Path, crs_list: List[str]) -> Path:
    """A QGIS project publishing ``raster`` as a WMS layer and a WCS coverage named after its file (stem), written
    with PyQGIS."""
    from qgis.core import QgsProject, QgsRasterLayer

    project = QgsProject()
    layer = QgsRasterLayer(str(raster), raster.stem)
    assert layer.isValid()
    project.addMapLayer(layer)
    project.setCrs(layer.crs())
    extent = layer.extent()
    project.writeEntry("WMSServiceCapabilities", "/", True)
    project.writeEntry("WMSServiceTitle", "/", "TreeSeg test")
    project.writeEntry("WMSCrsList", "/", crs_list)
    project.writeEntry("WCSLayers", "/", [layer.id()])
    project.writeEntry("WMSExtent", "/", [str(value) for value in (extent.xMinimum(), extent.yMinimum(),
                                                                      extent.xMaximum(), extent.yMaximum())])
    assert project.write(str(path))
    project.clear()
    return path


def _answers(port: int, path: str) -> bool:
    """True when 127.0.0.1:``port`` answers GET ``path`` with 200."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path)
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


def start_mapserver(project: Path, log: Path, env: Optional[dict] = None) -> Iterator[str]:
    """qgis_mapserver on a free port of 127.0.0.1 serving ``project``; yields its OWS URL, then stops it."""
    port = free_port()
    with open(log, "w") as output:
        server = subprocess.Popen([QGIS_MAPSERVER, "-p", str(project), f"127.0.0.1:{port}"], stdout=output,
                                  stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}/ows"
    try:
        deadline = time.monotonic() + 60
        while not _answers(port, "/ows?SERVICE=WMS&REQUEST=GetCapabilities"):
            assert server.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)
