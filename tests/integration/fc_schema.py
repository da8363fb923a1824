"""The response bodies of Firecracker's API spec (src/firecracker/swagger/
firecracker.yaml in Firecracker's repository, version 1.17), written down
as data: for each operation, the status codes it answers with and the schema
of each body; the schemas' field names, types, enums and required fields.
`check_response()` holds an answer from skiff's per-VM API against them.

Where skiff differs on purpose it is listed in DEVIATIONS, with the reason;
nothing else is excused. Additional members are allowed (Swagger 2.0's
default), since skiff adds its own (shares, console-ports, cpu_quota, ...).
"""
import http.client
import json
import re
import socket

INT, STR, BOOL, OBJ, ARR = "integer", "string", "boolean", "object", "array"

TOKEN_BUCKET = {"type": OBJ, "required": ["refill_time", "size"],
                "properties": {"one_time_burst": {"type": INT}, "refill_time": {"type": INT},
                               "size": {"type": INT}}}
RATE_LIMITER = {"type": OBJ, "properties": {"bandwidth": TOKEN_BUCKET, "ops": TOKEN_BUCKET}}

SCHEMAS = {
    "Error": {"type": OBJ, "properties": {"fault_message": {"type": STR}}},
    "InstanceInfo": {"type": OBJ, "required": ["app_name", "id", "state", "vmm_version"],
                     "properties": {"app_name": {"type": STR}, "id": {"type": STR},
                                    "state": {"type": STR, "enum": ["Not started", "Running", "Paused"]},
                                    "vmm_version": {"type": STR}}},
    "FirecrackerVersion": {"type": OBJ, "required": ["firecracker_version"],
                           "properties": {"firecracker_version": {"type": STR}}},
    "MachineConfiguration": {"type": OBJ, "required": ["mem_size_mib", "vcpu_count"],
                             "properties": {"cpu_template": {"type": STR},
                                            "smt": {"type": BOOL}, "mem_size_mib": {"type": INT},
                                            "track_dirty_pages": {"type": BOOL},
                                            "vcpu_count": {"type": INT, "minimum": 1, "maximum": 32},
                                            "huge_pages": {"type": STR,
                                                           "enum": ["None", "Transparent", "2M"]}}},
    "Balloon": {"type": OBJ, "required": ["amount_mib", "deflate_on_oom"],
                "properties": {"amount_mib": {"type": INT}, "deflate_on_oom": {"type": BOOL},
                               "stats_polling_interval_s": {"type": INT},
                               "free_page_hinting": {"type": BOOL},
                               "free_page_reporting": {"type": BOOL}}},
    "BalloonStats": {"type": OBJ, "required": ["target_pages", "actual_pages", "target_mib", "actual_mib"],
                     "properties": {k: {"type": INT} for k in (
                         "target_pages", "actual_pages", "target_mib", "actual_mib", "swap_in",
                         "swap_out", "major_faults", "minor_faults", "free_memory", "total_memory",
                         "available_memory", "disk_caches", "hugetlb_allocations", "hugetlb_failures",
                         "oom_kill", "alloc_stall", "async_scan", "direct_scan", "async_reclaim",
                         "direct_reclaim")}},
    "BalloonHintingStatus": {"type": OBJ, "required": ["host_cmd"],
                             "properties": {"host_cmd": {"type": INT}, "guest_cmd": {"type": INT}}},
    "BootSource": {"type": OBJ, "required": ["kernel_image_path"],
                   "properties": {"boot_args": {"type": STR}, "initrd_path": {"type": STR},
                                  "kernel_image_path": {"type": STR}}},
    "Drive": {"type": OBJ, "required": ["drive_id", "is_root_device"],
              "properties": {"drive_id": {"type": STR}, "partuuid": {"type": STR},
                             "is_root_device": {"type": BOOL},
                             "cache_type": {"type": STR, "enum": ["Unsafe", "Writeback"]},
                             "is_read_only": {"type": BOOL}, "path_on_host": {"type": STR},
                             "rate_limiter": RATE_LIMITER,
                             "io_engine": {"type": STR, "enum": ["Sync", "Async"]},
                             "socket": {"type": STR}}},
    "NetworkInterface": {"type": OBJ, "required": ["host_dev_name", "iface_id"],
                         "properties": {"guest_mac": {"type": STR}, "host_dev_name": {"type": STR},
                                        "iface_id": {"type": STR},
                                        "mtu": {"type": INT, "minimum": 68, "maximum": 65535},
                                        "rx_rate_limiter": RATE_LIMITER,
                                        "tx_rate_limiter": RATE_LIMITER}},
    "Vsock": {"type": OBJ, "required": ["guest_cid", "uds_path"],
              "properties": {"guest_cid": {"type": INT, "minimum": 3}, "uds_path": {"type": STR},
                             "vsock_id": {"type": STR}}},
    "Logger": {"type": OBJ, "properties": {
        "level": {"type": STR, "enum": ["Error", "Warning", "Info", "Debug", "Trace", "Off"]},
        "log_path": {"type": STR}, "show_level": {"type": BOOL}, "show_log_origin": {"type": BOOL},
        "module": {"type": STR}}},
    "Metrics": {"type": OBJ, "required": ["metrics_path"],
                "properties": {"metrics_path": {"type": STR}, "emit_id": {"type": BOOL}}},
    "MmdsConfig": {"type": OBJ, "required": ["network_interfaces"],
                   "properties": {"version": {"type": STR, "enum": ["V1", "V2"]},
                                  "network_interfaces": {"type": ARR, "items": {"type": STR}},
                                  "ipv4_address": {"type": STR}, "imds_compat": {"type": BOOL}}},
    "EntropyDevice": {"type": OBJ, "properties": {"rate_limiter": RATE_LIMITER}},
    "MmdsContents": {"type": OBJ},
    "MemoryHotplugStatus": {"type": OBJ, "properties": {k: {"type": INT} for k in (
        "total_size_mib", "slot_size_mib", "block_size_mib", "plugged_size_mib",
        "requested_size_mib")}},
}
SCHEMAS["FullVmConfiguration"] = {"type": OBJ, "properties": {
    "balloon": {"$ref": "Balloon"}, "drives": {"type": ARR, "items": {"$ref": "Drive"}},
    "boot-source": {"$ref": "BootSource"}, "cpu-config": {"type": OBJ},
    "logger": {"$ref": "Logger"}, "machine-config": {"$ref": "MachineConfiguration"},
    "metrics": {"$ref": "Metrics"}, "memory-hotplug": {"type": OBJ},
    "mmds-config": {"$ref": "MmdsConfig"},
    "network-interfaces": {"type": ARR, "items": {"$ref": "NetworkInterface"}},
    "pmem": {"type": ARR}, "vsock": {"$ref": "Vsock"}, "entropy": {"$ref": "EntropyDevice"}}}

# (method, path pattern) -> {status: schema name or None for no body}.
# "default" answers (Error) are allowed for every operation.
OPERATIONS = {
    ("GET", "/"): {200: "InstanceInfo"},
    ("PUT", "/actions"): {204: None, 400: "Error"},
    ("GET", "/balloon"): {200: "Balloon", 400: "Error"},
    ("PUT", "/balloon"): {204: None, 400: "Error"},
    ("PATCH", "/balloon"): {204: None, 400: "Error"},
    ("GET", "/balloon/statistics"): {200: "BalloonStats", 400: "Error"},
    ("PATCH", "/balloon/statistics"): {204: None, 400: "Error"},
    ("PATCH", "/balloon/hinting/start"): {204: None, 400: "Error"},
    ("GET", "/balloon/hinting/status"): {200: "BalloonHintingStatus", 400: "Error"},
    ("PATCH", "/balloon/hinting/stop"): {204: None, 400: "Error"},
    ("PUT", "/boot-source"): {204: None, 400: "Error"},
    ("PUT", "/cpu-config"): {204: None, 400: "Error"},
    ("PUT", "/drives/[^/]+"): {204: None, 400: "Error"},
    ("PATCH", "/drives/[^/]+"): {204: None, 400: "Error"},
    ("PUT", "/pmem/[^/]+"): {204: None, 400: "Error"},
    ("PATCH", "/pmem/[^/]+"): {204: None, 400: "Error"},
    ("PUT", "/logger"): {204: None, 400: "Error"},
    ("GET", "/machine-config"): {200: "MachineConfiguration"},
    ("PUT", "/machine-config"): {204: None, 400: "Error"},
    ("PATCH", "/machine-config"): {204: None, 400: "Error"},
    ("PUT", "/metrics"): {204: None, 400: "Error"},
    ("PUT", "/mmds"): {204: None, 400: "Error"},
    ("PATCH", "/mmds"): {204: None, 400: "Error"},
    ("GET", "/mmds"): {200: "MmdsContents", 404: "Error"},
    ("PUT", "/mmds/config"): {204: None, 400: "Error"},
    ("PUT", "/entropy"): {204: None},
    ("PUT", "/serial"): {204: None},
    ("PUT", "/hotplug/memory"): {204: None},
    ("PATCH", "/hotplug/memory"): {204: None},
    ("GET", "/hotplug/memory"): {200: "MemoryHotplugStatus"},
    ("PUT", "/network-interfaces/[^/]+"): {204: None, 400: "Error"},
    ("PATCH", "/network-interfaces/[^/]+"): {204: None, 400: "Error"},
    ("PUT", "/snapshot/create"): {204: None, 400: "Error"},
    ("PUT", "/snapshot/load"): {204: None, 400: "Error"},
    ("GET", "/version"): {200: "FirecrackerVersion"},
    ("PATCH", "/vm"): {204: None, 400: "Error"},
    ("GET", "/vm/config"): {200: "FullVmConfiguration"},
    ("PUT", "/vsock"): {204: None, 400: "Error"},
}

# What skiff answers differently, on purpose.
DEVIATIONS = {
    # A user-network interface has no host device; it says "backend":
    # "user" instead of a host_dev_name (TAP interfaces have one).
    "NetworkInterface.host_dev_name": lambda obj: obj.get("backend") == "user",
}


def _fail(where, msg):
    raise AssertionError(f"{where}: {msg}")


def validate(value, schema, where):
    if "$ref" in schema:
        name = schema["$ref"]
        return validate(value, SCHEMAS[name], name)
    t = schema.get("type")
    if t == OBJ:
        if not isinstance(value, dict):
            _fail(where, f"an object, not {value!r}")
        for req in schema.get("required", []):
            if req not in value and not DEVIATIONS.get(f"{where}.{req}", lambda o: False)(value):
                _fail(where, f"required member {req!r} missing from {value!r}")
        for k, v in value.items():
            sub = schema.get("properties", {}).get(k)
            if sub is not None:
                validate(v, sub, f"{where}.{k}")
    elif t == ARR:
        if not isinstance(value, list):
            _fail(where, f"an array, not {value!r}")
        for i, v in enumerate(value):
            validate(v, schema.get("items", {}), f"{where}[{i}]")
    elif t == INT:
        if not isinstance(value, int) or isinstance(value, bool):
            _fail(where, f"an integer, not {value!r}")
        if "minimum" in schema and value < schema["minimum"]:
            _fail(where, f"{value} below {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            _fail(where, f"{value} above {schema['maximum']}")
    elif t == STR:
        if not isinstance(value, str):
            _fail(where, f"a string, not {value!r}")
        if "enum" in schema and value not in schema["enum"]:
            _fail(where, f"{value!r} not one of {schema['enum']}")
    elif t == BOOL:
        if not isinstance(value, bool):
            _fail(where, f"a boolean, not {value!r}")


def check_response(method, path, status, body):
    """Hold one answer (status, parsed JSON body or None) against the spec."""
    op = None
    for (m, pat), answers in OPERATIONS.items():
        if m == method and re.fullmatch(pat, path):
            op = answers
            break
    if op is None:
        raise AssertionError(f"{method} {path} is not an operation of the spec")
    if status not in op:
        # "default: Internal server error" (an Error body) is every
        # operation's fallback.
        if body is None or not isinstance(body, dict):
            _fail(f"{method} {path}", f"status {status} with body {body!r}")
        validate(body, SCHEMAS["Error"], "Error")
        return
    schema = op[status]
    if schema is None:
        if body is not None:
            _fail(f"{method} {path}", f"status {status} must have no body, got {body!r}")
        return
    validate(body, SCHEMAS[schema], schema)


class _UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path, timeout=120):
        super().__init__("localhost", timeout=timeout)
        self.sock_path = str(path)

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.sock_path)
        self.sock = s


def call(sock, method, path, body=None):
    """One request to a VMM's API socket: (status, parsed body or None),
    after holding the answer against the spec."""
    c = _UnixHTTP(sock)
    c.request(method, path, json.dumps(body) if body is not None else None,
              {"Content-Type": "application/json"})
    r = c.getresponse()
    data = r.read()
    c.close()
    parsed = json.loads(data) if data else None
    check_response(method, path, r.status, parsed)
    return r.status, parsed
