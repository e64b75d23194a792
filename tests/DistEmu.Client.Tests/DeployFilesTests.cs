using System.Text.RegularExpressions;
using System.Xml.Linq;
using DistEmu.Silo;
using YamlDotNet.RepresentationModel;

namespace DistEmu.Client.Tests;

/// <summary>
/// deploy/ cannot be run here (no Docker engine), so its files are checked against the code: every option they pass
/// exists and parses, ports agree with the silo's defaults, the Dockerfile and the health checks, every service they
/// name exists, the images carry the project's version, and .dockerignore keeps what the build reads.
/// </summary>
public sealed partial class DeployFilesTests
{
    internal static string Root()
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

    /// <summary>A key of a mapping, or of the mappings it merges in (<c>&lt;&lt;: *silo</c>); null when neither has it.</summary>
    private static YamlNode? Get(YamlMappingNode m, string key)
    {
        if (m.Children.TryGetValue(new YamlScalarNode(key), out var v)) return v;
        if (!m.Children.TryGetValue(new YamlScalarNode("<<"), out var merged)) return null;
        foreach (var from in merged is YamlSequenceNode seq ? seq.Children : [merged])
            if (Get((YamlMappingNode)from, key) is { } found) return found;
        return null;
    }

    private static YamlMappingNode Service(string name) => Each().Single(s => s.Service == name).Node;

    private static IEnumerable<(string Service, YamlMappingNode Node)> Silos() => Each().Where(s => s.Service.StartsWith("silo", StringComparison.Ordinal));

    /// <summary>The project's version: the one &lt;Version&gt; of Directory.Build.props, which the build stamps on every assembly.</summary>
    internal static string ProjectVersion() =>
        XDocument.Load(Path.Combine(Root(), "Directory.Build.props")).Descendants("Version").Single().Value.Trim();

    /// <summary>An image reference split into name and tag (null: no tag, which means :latest).</summary>
    internal static (string Name, string? Tag) Image(string image)
    {
        int colon = image.LastIndexOf(':');
        return colon > image.LastIndexOf('/') ? (image[..colon], image[(colon + 1)..]) : (image, null);
    }

    /// <summary>Every image has an explicit tag other than latest, and ours is the project's version.</summary>
    internal static void AssertVersioned(string where, string image)
    {
        var (name, tag) = Image(image);
        Assert.False(tag is null or "latest", $"{where}: image {image} has no fixed tag (it would be pulled as :latest)");
        if (name == "distemu")
            Assert.True(tag == ProjectVersion(), $"{where}: image {image}, but the project's version (Directory.Build.props) is {ProjectVersion()}");
    }

    /// <summary>The distemu command line's parser accepts <paramref name="args"/> (parsing only: nothing runs).</summary>
    internal static void AssertClientParses(string where, IReadOnlyList<string> args)
    {
        var parsed = Cli.Commands(TextWriter.Null, TextWriter.Null).Parse(args.ToArray());
        var error = CommandLineError.Of(parsed, "distemu");
        Assert.True(error is null, $"{where}: distemu {string.Join(' ', args)}: {error?.Message}");
        if (args.SkipWhile(a => a != "--preset").Skip(1).FirstOrDefault() is { } preset)
            Assert.True(File.Exists(Path.Combine(Root(), "presets", preset + ".yaml")), $"{where}: no preset {preset}");
    }

    private static string Dockerfile() => File.ReadAllText(Path.Combine(Root(), "deploy", "Dockerfile"));

    /// <summary>The final stage's working directory (its last WORKDIR).</summary>
    private static string ImageWorkdir() => Regex.Matches(Dockerfile(), @"(?m)^WORKDIR\s+(\S+)").Last().Groups[1].Value;

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
        AssertClientParses("compose client", args);
        Assert.Equal("distemu", List(client["entrypoint"]).Single());
        var env = (YamlMappingNode)client["environment"];
        var otlp = new Uri(((YamlScalarNode)env["OTEL_EXPORTER_OTLP_ENDPOINT"]).Value!);
        var jaeger = Each().Single(s => s.Service == otlp.Host).Node;
        Assert.Contains($"{otlp.Port}:{otlp.Port}", List(jaeger["ports"]));
        Assert.Contains("16686:16686", List(jaeger["ports"]));
    }

    [Fact]
    public void Every_image_has_a_fixed_tag_and_ours_the_project_version_the_build_stamps()
    {
        var version = ProjectVersion();
        Assert.Matches(@"^\d+\.\d+\.\d+$", version);
        var stamped = typeof(Cli).Assembly.GetName().Version!;
        Assert.Equal(version, $"{stamped.Major}.{stamped.Minor}.{stamped.Build}");
        int ours = 0;
        foreach (var (name, node) in Each())
        {
            var image = Get(node, "image");
            Assert.True(image is not null, $"compose service {name} names no image");
            AssertVersioned($"compose service {name}", ((YamlScalarNode)image).Value!);
            if (Image(((YamlScalarNode)image).Value!).Name == "distemu") ours++;
        }
        Assert.Equal(4, ours); // three silos and the client
        // Every distemu:TAG the deploy files and READMEs write down (build commands, kind/minikube loads) is the version too.
        foreach (var file in new[] { "deploy/Dockerfile", "deploy/README.md", "README.md", "deploy/docker-compose.yml", "deploy/k8s/silo.yaml" })
            foreach (Match m in Regex.Matches(File.ReadAllText(Path.Combine(Root(), file)), @"\bdistemu:(\d[\w.-]*)"))
                Assert.True(m.Groups[1].Value == version, $"{file}: {m.Value}, but the project's version is {version}");
    }

    [Fact]
    public void Compose_starts_the_silos_on_a_healthy_redis_and_the_client_on_healthy_silos()
    {
        var redisCheck = List(Service("redis")["healthcheck"]["test"]);
        Assert.Equal(["CMD", "redis-cli", "ping"], redisCheck);
        var silos = Silos().ToList();
        Assert.Equal(3, silos.Count);
        foreach (var (name, node) in silos)
        {
            var settings = SiloSettings.Parse(List(Get(node, "command")!).ToArray());
            var check = Get(node, "healthcheck") as YamlMappingNode;
            Assert.True(check is not null, $"{name} has no healthcheck");
            var test = string.Join(' ', List(check["test"]));
            var port = Regex.Match(test, @"/dev/tcp/[^/\s]+/(\d+)");
            Assert.True(port.Success, $"{name}: the healthcheck ({test}) does not try a TCP port");
            Assert.Equal(settings.GatewayPort.ToString(), port.Groups[1].Value);
            var depends = (YamlMappingNode)Get(node, "depends_on")!;
            Assert.Equal("service_healthy", ((YamlScalarNode)depends["redis"]["condition"]).Value);
        }
        var clientDepends = (YamlMappingNode)Service("client")["depends_on"];
        foreach (var (name, _) in silos)
        {
            Assert.True(clientDepends.Children.ContainsKey(new YamlScalarNode(name)), $"the client does not wait for {name}");
            Assert.Equal("service_healthy", ((YamlScalarNode)clientDepends[name]["condition"]).Value);
        }
    }

    [Fact]
    public void Compose_keeps_the_client_results_on_a_volume_and_publishes_no_redis_port_beyond_loopback()
    {
        var client = Service("client");
        var args = List(client["command"]);
        var workdir = Get(client, "working_dir") is YamlScalarNode w ? w.Value! : ImageWorkdir();
        // Where the run writes: --out DIR, else results/<stamp>-<preset>-<workload> under the working directory.
        var outIndex = args.IndexOf("--out");
        string results;
        if (outIndex >= 0) results = Path.GetDirectoryName(args[outIndex + 1])!.Replace('\\', '/');
        else
        {
            var help = new StringWriter();
            Assert.Equal(0, Cli.Run(["run", "--help"], help, TextWriter.Null));
            Assert.Contains("default: results/", help.ToString());
            results = workdir.TrimEnd('/') + "/results";
        }
        var mounts = List(client["volumes"]).Select(v => v.Split(':')).ToList();
        var mount = mounts.SingleOrDefault(m => m[1] == results);
        Assert.True(mount is not null, $"the client writes under {results}, which no volume mounts ({string.Join(", ", mounts.Select(m => string.Join(':', m)))})");
        if (!mount[0].StartsWith('.') && !mount[0].StartsWith('/'))
            Assert.True(((YamlMappingNode)Compose()["volumes"]).Children.ContainsKey(new YamlScalarNode(mount[0])), $"named volume {mount[0]} is not declared");
        // The image runs as app: the mount point exists in the image and app owns it (a new named volume copies that).
        Assert.Matches($@"(?m)^RUN mkdir (-p )?{Regex.Escape(results)} && chown app(:app)? {Regex.Escape(results)}\s*$", Dockerfile());

        var redis = Service("redis");
        if (redis.Children.TryGetValue(new YamlScalarNode("ports"), out var ports))
            foreach (var p in List(ports))
                Assert.True(p.StartsWith("127.0.0.1:", StringComparison.Ordinal), $"redis publishes {p} on every host interface");
    }

    [Fact]
    public void Every_command_the_deploy_readme_shows_parses()
    {
        var readme = File.ReadAllText(Path.Combine(Root(), "deploy", "README.md"));
        int client = 0, silo = 0;
        foreach (Match block in Regex.Matches(readme, @"(?s)```\n(.*?)```"))
            foreach (var raw in block.Groups[1].Value.Split('\n'))
            {
                var line = Regex.Replace(raw, @"\s+#.*$", "").Trim();
                string[] Args(string rest) => rest.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (Regex.Match(line, @"run --rm client (.*)$") is { Success: true } c) { AssertClientParses(line, Args(c.Groups[1].Value)); client++; }
                else if (Regex.Match(line, @"(?:^|\s)distemu\s+(.*)$") is { Success: true } d) { AssertClientParses(line, Args(d.Groups[1].Value)); client++; }
                else if (Regex.Match(line, @"--project src/Silo\b.*? -- (.*)$") is { Success: true } s)
                {
                    var ex = Record.Exception(() => SiloSettings.Parse(Args(s.Groups[1].Value)));
                    Assert.True(ex is null, $"{line}: {ex?.Message}");
                    silo++;
                }
            }
        Assert.True(client >= 4, $"{client} distemu command lines found in deploy/README.md");
        Assert.True(silo >= 1, $"{silo} silo command lines found in deploy/README.md");
    }

    [Fact]
    public void Every_redis_server_the_readmes_start_on_the_host_listens_on_loopback_only()
    {
        int found = 0;
        foreach (var file in new[] { "README.md", "deploy/README.md", "bench/README.md" })
            foreach (Match block in Regex.Matches(File.ReadAllText(Path.Combine(Root(), file)), @"(?s)```[a-z]*\n(.*?)```"))
                foreach (var line in block.Groups[1].Value.Split('\n').Where(l => Regex.IsMatch(l, @"(^|\s)redis-server(\s|$)")))
                {
                    found++;
                    Assert.True(Regex.IsMatch(line, @"--bind 127\.0\.0\.1(\s|$)"), $"{file}: {line.Trim()} listens on every interface (add --bind 127.0.0.1)");
                }
        Assert.True(found >= 1, "no redis-server command found in the READMEs");
    }

    [Fact]
    public void The_dockerfile_builds_only_the_projects_the_image_runs()
    {
        var dockerfile = Dockerfile();
        var builds = Regex.Matches(dockerfile, @"dotnet (?:publish|build|restore)\s+(\S+)").Select(m => m.Groups[1].Value).ToList();
        Assert.Equal(["src/Silo/DistEmu.Silo.csproj", "src/Client/DistEmu.Client.csproj"], builds);
        Assert.DoesNotContain(".sln", dockerfile.Replace("DistEmu.sln", "", StringComparison.Ordinal) + string.Join(' ', builds));
    }

    /// <summary>
    /// The files .dockerignore leaves out of the build context, as Docker reads it (moby/patternmatcher): patterns are
    /// relative to the context's root, <c>**</c> spans folders, <c>*</c> and <c>?</c> stay within one, a pattern that
    /// matches a folder leaves out everything in it, <c>!</c> takes a path back, and the last matching line decides.
    /// </summary>
    internal static Func<string, bool> DockerIgnore(string text)
    {
        var rules = new List<(Regex Pattern, bool Exclude)>();
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#')) continue;
            bool exclude = !line.StartsWith('!');
            var pattern = line.TrimStart('!').Trim().Trim('/');
            var regex = new System.Text.StringBuilder("^");
            for (int i = 0; i < pattern.Length; i++)
            {
                if (pattern[i] == '*' && i + 1 < pattern.Length && pattern[i + 1] == '*')
                {
                    bool slash = i + 2 < pattern.Length && pattern[i + 2] == '/';
                    regex.Append(slash ? "(.*/)?" : ".*");
                    i += slash ? 2 : 1;
                }
                else if (pattern[i] == '*') regex.Append("[^/]*");
                else if (pattern[i] == '?') regex.Append("[^/]");
                else regex.Append(Regex.Escape(pattern[i].ToString()));
            }
            rules.Add((new Regex(regex.Append('$').ToString()), exclude));
        }
        return path =>
        {
            var parts = path.Split('/');
            var prefixes = Enumerable.Range(1, parts.Length).Select(n => string.Join('/', parts.Take(n))).ToList();
            bool excluded = false;
            foreach (var (pattern, exclude) in rules)
                if (prefixes.Any(pattern.IsMatch)) excluded = exclude;
            return excluded;
        };
    }

    [Fact]
    public void The_dockerignore_drops_build_outputs_and_keeps_what_the_build_reads()
    {
        var root = Root();
        var file = Path.Combine(root, ".dockerignore");
        Assert.True(File.Exists(file), ".dockerignore is missing: COPY . . would send bin/, obj/ and results to the daemon");
        var ignored = DockerIgnore(File.ReadAllText(file));
        foreach (var path in new[]
        {
            "src/Client/bin/Release/net10.0/distemu.dll", "src/Kernel/obj/project.assets.json", "bin/x", "obj/x",
            "tests/DistEmu.Client.Tests/bin/Release/net10.0/x.dll", "results/20260101-000000-small-page-fault1/report.md",
            "bench/results/x.csv", "artifacts/tool/DistEmu.Client.0.7.0.nupkg", ".git/HEAD",
            "tests/DistEmu.Client.Tests/TestResults/run.trx", "run.trx",
        })
            Assert.True(ignored(path), $".dockerignore lets {path} into the build context");

        // What the build reads: the props, the solution, the analyzer settings, all of src/ and what its projects pull in
        // from outside their folders (deploy/sql, presets), and what the Dockerfile copies from the context.
        var needed = new List<string> { "Directory.Build.props", "Directory.Packages.props", "DistEmu.sln", ".editorconfig" };
        string Rel(string full) => Path.GetRelativePath(root, full).Replace('\\', '/');
        bool Output(string rel) => rel.Split('/').Any(p => p is "bin" or "obj");
        needed.AddRange(Directory.EnumerateFiles(Path.Combine(root, "src"), "*", SearchOption.AllDirectories).Select(Rel).Where(r => !Output(r)));
        foreach (var project in Directory.EnumerateFiles(Path.Combine(root, "src"), "*.csproj", SearchOption.AllDirectories))
            foreach (var include in XDocument.Load(project).Descendants().Select(e => (string?)e.Attribute("Include")).OfType<string>().Where(i => i.StartsWith("..", StringComparison.Ordinal)))
            {
                var full = Path.GetFullPath(Path.Combine(Path.GetDirectoryName(project)!, include.Replace('\\', '/')));
                var files = Directory.EnumerateFiles(Path.GetDirectoryName(full)!, Path.GetFileName(full)).ToList();
                Assert.True(files.Count > 0, $"{Rel(project)}: {include} matches no file");
                needed.AddRange(files.Select(Rel));
            }
        foreach (Match copy in Regex.Matches(Dockerfile(), @"(?m)^COPY\s+(?!--from)(\S+)\s+\S+\s*$"))
            needed.AddRange(copy.Groups[1].Value == "."
                ? []
                : Directory.EnumerateFiles(Path.Combine(root, copy.Groups[1].Value), "*", SearchOption.AllDirectories).Select(Rel));
        Assert.Contains("deploy/sql/PostgreSQL-Main.sql", needed);
        Assert.Contains("presets/small.yaml", needed);
        foreach (var path in needed.Distinct())
            Assert.False(ignored(path), $".dockerignore leaves out {path}, which the image's build reads");
    }
}
