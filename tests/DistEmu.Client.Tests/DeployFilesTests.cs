using System.Text.RegularExpressions;
using DistEmu.Silo;
using YamlDotNet.RepresentationModel;

namespace DistEmu.Client.Tests;

/// <summary>
/// deploy/ cannot be run here (no Docker engine), so its files are checked against the code: every option they pass
/// exists, ports agree with the silo's defaults and the Dockerfile, and every service they name exists.
/// </summary>
public sealed partial class DeployFilesTests
{
    private static string Root()
    {
        var d = new DirectoryInfo(AppContext.BaseDirectory);
        while (d != null && !File.Exists(Path.Combine(d.FullName, "DistEmu.sln"))) d = d.Parent;
        return d!.FullName;
    }

    private static YamlMappingNode Compose()
    {
        var yaml = new YamlStream();
        using var reader = new StreamReader(Path.Combine(Root(), "deploy", "docker-compose.yml"));
        yaml.Load(reader);
        return (YamlMappingNode)yaml.Documents[0].RootNode;
    }

    private static YamlMappingNode Services() => (YamlMappingNode)Compose()["services"];

    private static IEnumerable<(string Service, YamlMappingNode Node)> Each() =>
        Services().Children.Select(kv => (((YamlScalarNode)kv.Key).Value!, (YamlMappingNode)kv.Value));

    private static List<string> List(YamlNode n) => ((YamlSequenceNode)n).Children.Select(c => ((YamlScalarNode)c).Value!).ToList();

    [GeneratedRegex(@"--[a-z][a-z-]*")] private static partial Regex Option();

    [Fact]
    public void Every_silo_option_in_the_compose_file_exists_and_parses()
    {
        var silos = Each().Where(s => s.Node.Children.ContainsKey(new YamlScalarNode("command")) && s.Service.StartsWith("silo", StringComparison.Ordinal)).ToList();
        Assert.Equal(3, silos.Count);
        foreach (var (name, node) in silos)
        {
            var args = List(node["command"]);
            foreach (var opt in args.Where(a => a.StartsWith("--", StringComparison.Ordinal)))
                Assert.Contains(opt, SiloSettings.Help);
            var settings = SiloSettings.Parse(args.ToArray());
            Assert.Equal("redis", settings.Clustering);
            Assert.Equal(new SiloSettings().SiloPort, settings.SiloPort);
            Assert.Equal(new SiloSettings().GatewayPort, settings.GatewayPort);
            Assert.Contains(settings.Redis!.Split(':')[0], Services().Children.Keys.Select(k => ((YamlScalarNode)k).Value));
        }
    }

    [Fact]
    public void The_dockerfile_exposes_the_silo_ports_and_runs_as_a_non_root_user()
    {
        var dockerfile = File.ReadAllText(Path.Combine(Root(), "deploy", "Dockerfile"));
        var d = new SiloSettings();
        Assert.Matches($@"EXPOSE\s+{d.SiloPort}\s+{d.GatewayPort}", dockerfile);
        Assert.Matches(@"(?m)^USER\s+app\s*$", dockerfile);
        Assert.Contains("src/Silo/DistEmu.Silo.csproj", dockerfile);
        Assert.Contains("src/Client/DistEmu.Client.csproj", dockerfile);
        Assert.True(File.Exists(Path.Combine(Root(), "src", "Silo", "DistEmu.Silo.csproj")));
    }

    [Fact]
    public void The_client_run_uses_existing_options_and_reaches_jaeger_on_its_otlp_port()
    {
        var client = Each().Single(s => s.Service == "client").Node;
        var args = List(client["command"]);
        Assert.Equal("run", args[0]);
        var help = new StringWriter();
        Assert.Equal(0, DistEmu.Client.Cli.Run(["run", "--help"], help, TextWriter.Null));
        foreach (var opt in args.Where(a => a.StartsWith("--", StringComparison.Ordinal)))
            Assert.Contains(opt, help.ToString());
        var env = (YamlMappingNode)client["environment"];
        var otlp = new Uri(((YamlScalarNode)env["OTEL_EXPORTER_OTLP_ENDPOINT"]).Value!);
        var jaeger = Each().Single(s => s.Service == otlp.Host).Node;
        Assert.Contains($"{otlp.Port}:{otlp.Port}", List(jaeger["ports"]));
        Assert.Contains("16686:16686", List(jaeger["ports"]));
    }
}
