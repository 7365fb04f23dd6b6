# lit configuration for kt's regression tests (FileCheck based).
import os
import lit.formats

config.name = "kt"
config.test_format = lit.formats.ShTest(execute_external=True)
config.suffixes = [".mlir", ".test"]
config.excludes = ["Inputs", "lit.cfg.py", "lit.site.cfg.py", "fixtures",
                   "ktransformers-rules"]
config.test_source_root = os.path.dirname(__file__)
if getattr(config, "kt_hwloc", "0") == "1":
    config.available_features.add("hwloc")
# %numa-vm PROGRAM ARGS: runs PROGRAM in the QEMU VM of two NUMA nodes
# (scripts/numa-vm.py; --add PATH puts a file it reads in the VM).
if getattr(config, "kt_numa_vm", ""):
    config.available_features.add("numa-vm")
    config.substitutions.append(("%numa-vm", config.kt_numa_vm))
config.test_exec_root = os.path.join(config.kt_obj_root, "test")

# kt-opt, kt-run and kt-quant, then LLVM's FileCheck / not / count.
path = [os.path.join(config.kt_tools_dir, "kt-opt"),
        os.path.join(config.kt_tools_dir, "kt-run"),
        os.path.join(config.kt_tools_dir, "kt-quant"), config.llvm_tools_dir,
        config.environment.get("PATH", os.environ.get("PATH", ""))]
config.environment["PATH"] = os.pathsep.join(path)
config.substitutions.append(("%fixtures", os.path.join(config.kt_src_root, "test", "fixtures", "models")))
config.substitutions.append(("%upstream", os.path.join(config.kt_src_root, "test", "ktransformers-rules")))
config.substitutions.append(("%rules", os.path.join(config.kt_src_root, "rules")))
config.substitutions.append(("%python", config.python_executable))
config.substitutions.append(("%scripts", os.path.join(config.kt_src_root, "test", "scripts")))
