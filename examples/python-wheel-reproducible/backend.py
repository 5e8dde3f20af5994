"""A PEP 517 build backend (build_wheel only) whose wheel is the same bytes
on every Python 3 and every Debian release: nothing in it depends on the
tools that run it.
"""
import base64
import hashlib
import os
import sys
import zipfile

NAME = 'greet'
VERSION = '1.0'
DIST_INFO = f'{NAME}-{VERSION}.dist-info'
# Zip entries carry a date; the zip format's first one is as good as any, and never changes.
FIXED_DATE = (1980, 1, 1, 0, 0, 0)


def _record_line(path, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()
    return f'{path},sha256={digest},{len(data)}\n'


def _files():
    with open('greet.py', 'rb') as f:
        module = f.read()
    metadata = f'Metadata-Version: 2.1\nName: {NAME}\nVersion: {VERSION}\nSummary: Says hello\n'
    # The generator is this backend, by name, not the version of any installed tool.
    wheel = 'Wheel-Version: 1.0\nGenerator: buildhaus-example-backend 1\nRoot-Is-Purelib: true\nTag: py3-none-any\n'
    files = [
        ('greet.py', module),
        (f'{DIST_INFO}/METADATA', metadata.encode()),
        (f'{DIST_INFO}/WHEEL', wheel.encode()),
    ]
    record = ''.join(_record_line(path, data) for path, data in files) + f'{DIST_INFO}/RECORD,,\n'
    return files + [(f'{DIST_INFO}/RECORD', record.encode())]


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    name = f'{NAME}-{VERSION}-py3-none-any.whl'
    os.makedirs(wheel_directory, exist_ok=True)
    with zipfile.ZipFile(os.path.join(wheel_directory, name), 'w') as archive:
        for path, data in _files():
            info = zipfile.ZipInfo(path, date_time=FIXED_DATE)
            # Stored, not deflated: zlib's compressed bytes may change from one release of it to the next.
            info.compress_type = zipfile.ZIP_STORED
            info.external_attr = 0o100644 << 16
            info.create_system = 3
            archive.writestr(info, data)
    return name


if __name__ == '__main__':
    print(build_wheel(sys.argv[1] if len(sys.argv) > 1 else 'dist'))
