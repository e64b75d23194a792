using System.Diagnostics;
using System.IO.Compression;
using System.Xml.Linq;

namespace DistEmu.Client.Tests;

/// <summary>
/// distemu as a .NET tool (scripts/install.sh): the package holds the command, its entry point and the presets, so
/// an installed distemu runs outside a checkout. The pack reuses the suite's build (--no-build): about 10 s.
/// </summary>
public sealed class ToolPackageTests : IDisposable
{
    private readonly string _tmp = Directory.CreateTempSubdirectory("distemu-pack-").FullName;

    public void Dispose() => Directory.Delete(_tmp, true);

    private static string Root()
    {
        var d = new DirectoryInfo(AppContext.BaseDirectory);
        while (d != null && !File.Exists(Path.Combine(d.FullName, "DistEmu.sln"))) d = d.Parent;
        return d!.FullName;
    }

    [Fact]
    public async Task The_packed_tool_is_the_distemu_command_with_its_presets()
    {
        // This assembly's folder says which configuration the suite was built in (bin/Release/net10.0/).
        string configuration = new DirectoryInfo(AppContext.BaseDirectory).Parent!.Name;
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "pack", Path.Combine(Root(), "src", "Client"), "-c", configuration, "--no-build", "-o", _tmp, "--nologo" })
            psi.ArgumentList.Add(a);
        using var pack = Process.Start(psi)!;
        var output = pack.StandardOutput.ReadToEndAsync();
        var errors = pack.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        await pack.WaitForExitAsync(timeout.Token);
        Assert.True(pack.ExitCode == 0, await output + await errors);

        var nupkg = Assert.Single(Directory.GetFiles(_tmp, "DistEmu.Client.*.nupkg"));
        using var zip = ZipFile.OpenRead(nupkg);
        var names = zip.Entries.Select(e => e.FullName).ToHashSet();
        Assert.Contains("tools/net10.0/any/distemu.dll", names);
        Assert.Contains("tools/net10.0/any/presets/small.yaml", names);
        using var settings = zip.GetEntry("tools/net10.0/any/DotnetToolSettings.xml")!.Open();
        var command = XDocument.Load(settings).Descendants("Command").Single();
        Assert.Equal("distemu", command.Attribute("Name")!.Value);
        Assert.Equal("distemu.dll", command.Attribute("EntryPoint")!.Value);
    }
}
