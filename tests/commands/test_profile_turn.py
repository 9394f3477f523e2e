"""bench/profile_turn.py's table of an ncu csv: one row per kernel, largest total first, in µs
whatever unit ncu chose for each launch."""
import importlib.util
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]
HEADER = ('"ID","Process ID","Process Name","Host Name","Kernel Name","Context","Stream",'
          '"Block Size","Grid Size","Device","CC","Section Name","Metric Name","Metric Unit",'
          '"Metric Value","Rule Name","Rule Type","Rule Description","Estimated Speedup Type",'
          '"Estimated Speedup"')


def row(launch, kernel, grid, metric, unit, value):
    return (f'"{launch}","1","python3","h","{kernel}","1","7","(256, 1, 1)","{grid}","0","9.0",'
            f'"GPU Speed Of Light Throughput","{metric}","{unit}","{value}","","","","",""')


def load_script():
    spec = importlib.util.spec_from_file_location("profile_turn", ROOT / "bench" / "profile_turn.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_table_sums_each_kernels_launches_in_microseconds(tmp_path):
    csv = tmp_path / "turn.csv"
    csv.write_text("\n".join([
        "==PROF== Connected to process 1 (/usr/bin/python3.12)",
        HEADER,
        row(0, "rmsnorm_kernel(const float *, int)", "(32, 1, 1)", "Duration", "ns", "4,480"),
        row(0, "rmsnorm_kernel(const float *, int)", "(32, 1, 1)", "DRAM Throughput", "%", "0.9"),
        row(1, "void matmul_cluster_kernel<fmt::Q5_0>(const unsigned char *)", "(14, 1, 8)",
            "Duration", "us", "16.60"),
        row(2, "rmsnorm_kernel(const float *, int)", "(32, 1, 1)", "Duration", "ns", "4,520"),
        "==PROF== Disconnected from process 1",
    ]) + "\n")
    lines = load_script().table(str(csv)).splitlines()
    assert lines[1].split() == ["16.6", "1", "16.60", "void", "matmul_cluster_kernel<fmt::Q5_0>",
                                "((14,", "1,", "8))"]
    assert lines[2].split()[:3] == ["9.0", "2", "4.50"] and "rmsnorm_kernel" in lines[2]
    assert lines[3].split()[:2] == ["25.6", "3"]
