using DistEmu.Kernel.Machine;

namespace DistEmu.Client.Tests;

/// <summary>
/// The machine file's transparent_hugepage key (/sys/kernel/mm/transparent_hugepage/enabled for anonymous memory):
/// parsed, defaulted to always, rejected with FILE:LINE:COL when bad, shown in every preset and in config.yaml.
/// </summary>
public sealed class TransparentHugepageConfigTests : InProcessCliTests
{
    private string Machine(string body)
    {
        var file = Path.Combine(_tmp, "thp.yaml");
        File.WriteAllText(file, "base: small\n" + body);
        return file;
    }

    [Theory]
    [InlineData("transparent_hugepage: never\n", TransparentHugepage.Never)]
    [InlineData("transparent_hugepage: madvise\n", TransparentHugepage.Madvise)]
    [InlineData("transparent_hugepage: always\n", TransparentHugepage.Always)]
    [InlineData("", TransparentHugepage.Always)]
    public void Transparent_hugepage_key_sets_the_machine_mode_and_defaults_to_always(string body, TransparentHugepage expected) =>
        Assert.Equal(expected, MachineLoader.LoadFile(Machine(body)).Thp);

    [Fact]
    public void Transparent_hugepage_bad_value_is_reported_at_file_line_column()
    {
        var e = Assert.Throws<UsageException>(() => MachineLoader.LoadFile(Machine("nodes: 2\ntransparent_hugepage: sometimes\n")));
        Assert.EndsWith("thp.yaml:3:23: transparent_hugepage = sometimes: expected always, madvise or never", e.Message);
    }

    [Fact]
    public void Transparent_hugepage_is_in_every_preset_and_in_the_effective_config()
    {
        foreach (var name in MachineLoader.PresetNames())
        {
            var text = File.ReadAllText(Path.Combine(MachineLoader.PresetsDir(), name + ".yaml"));
            Assert.True(text.Contains("\ntransparent_hugepage: always", StringComparison.Ordinal), $"preset {name} does not say transparent_hugepage");
        }
        var outDir = Path.Combine(_tmp, "run");
        var (code, _, stderr) = Cli("run", "--engine", "sim", "--machine", Machine("transparent_hugepage: madvise\n"), "--workload", "page-fault1", "--param", "size_mb=4", "--ops", "100", "--out", outDir);
        Assert.True(code == 0, stderr);
        var config = File.ReadAllText(Path.Combine(outDir, "config.yaml"));
        Assert.Contains("\ntransparent_hugepage: madvise\n", config);
        Assert.Equal(TransparentHugepage.Madvise, MachineLoader.LoadFile(Path.Combine(outDir, "config.yaml")).Thp);
    }
}
