using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Reflection;
using System.Text.Json;
using DistEmu.Kernel.Machine;
using OpenTelemetry.Exporter;

namespace DistEmu.Telemetry.Tests;

/// <summary>
/// The standalone Aspire Dashboard (NuGet Aspire.Dashboard.Sdk.linux-x64, fetched by PackageDownload) on free loopback
/// ports: OTLP/gRPC and OTLP/HTTP intake, unsecured, and its telemetry HTTP API (/api/telemetry/…) enabled. Killed on Dispose.
/// </summary>
public sealed class AspireDashboard : IDisposable
{
    public const string Version = "13.6.5";
    private readonly Process? _process;
    private readonly List<string> _output = new();

    public Uri Frontend { get; }
    public Uri OtlpGrpc { get; }
    public Uri OtlpHttp { get; }
    public string Executable { get; }
    public string? StartError { get; }
    public HttpClient Http { get; } = new() { Timeout = TimeSpan.FromSeconds(10) };

    public AspireDashboard()
    {
        var root = typeof(AspireDashboard).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().FirstOrDefault(a => a.Key == "NuGetPackageRoot")?.Value
                   ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        Executable = Path.Combine(root, "aspire.dashboard.sdk.linux-x64", Version, "tools", "Aspire.Dashboard");
        Frontend = new Uri($"http://127.0.0.1:{FreePort()}");
        OtlpGrpc = new Uri($"http://127.0.0.1:{FreePort()}");
        OtlpHttp = new Uri($"http://127.0.0.1:{FreePort()}");
        if (!File.Exists(Executable))
        {
            StartError = $"Aspire Dashboard executable not found at {Executable} (package Aspire.Dashboard.Sdk.linux-x64 {Version} should have been restored by the test project's PackageDownload)";
            return;
        }
        var psi = new ProcessStartInfo(Executable)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = Path.GetDirectoryName(Executable)!,
        };
        psi.Environment["ASPNETCORE_URLS"] = Frontend.ToString();
        psi.Environment["ASPIRE_DASHBOARD_OTLP_ENDPOINT_URL"] = OtlpGrpc.ToString();
        psi.Environment["ASPIRE_DASHBOARD_OTLP_HTTP_ENDPOINT_URL"] = OtlpHttp.ToString();
        psi.Environment["DASHBOARD__FRONTEND__AUTHMODE"] = "Unsecured";
        psi.Environment["DASHBOARD__OTLP__AUTHMODE"] = "Unsecured";
        psi.Environment["DASHBOARD__API__ENABLED"] = "true";
        psi.Environment["DASHBOARD__API__AUTHMODE"] = "Unsecured";
        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        _process = new Process { StartInfo = psi };
        _process.OutputDataReceived += (_, e) => { if (e.Data != null) lock (_output) _output.Add(e.Data); };
        _process.ErrorDataReceived += (_, e) => { if (e.Data != null) lock (_output) _output.Add(e.Data); };
        _process.Start();
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromSeconds(30))
        {
            if (_process.HasExited)
            {
                StartError = $"Aspire Dashboard exited with {_process.ExitCode}:\n{Output}";
                return;
            }
            try
            {
                using var r = Http.GetAsync(new Uri(Frontend, "/api/telemetry/spans?limit=1")).GetAwaiter().GetResult();
                if (r.StatusCode == HttpStatusCode.OK) return;
                if (r.StatusCode == HttpStatusCode.NotFound)
                {
                    StartError = $"Aspire Dashboard {Version} answers 404 for /api/telemetry/spans: no telemetry HTTP API in this version\n{Output}";
                    return;
                }
            }
            catch (HttpRequestException)
            {
            }
            catch (TaskCanceledException)
            {
            }
            Thread.Sleep(200);
        }
        StartError = $"Aspire Dashboard did not answer on {Frontend} within 30 s:\n{Output}";
    }

    public string Output
    {
        get
        {
            lock (_output) return string.Join("\n", _output.TakeLast(40));
        }
    }

    private static int FreePort()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        int port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }

    public (HttpStatusCode Status, string Body) TryGet(string pathAndQuery)
    {
        using var r = Http.GetAsync(new Uri(Frontend, pathAndQuery)).GetAwaiter().GetResult();
        return (r.StatusCode, r.Content.ReadAsStringAsync().GetAwaiter().GetResult());
    }

    public JsonDocument Get(string pathAndQuery)
    {
        using var r = Http.GetAsync(new Uri(Frontend, pathAndQuery)).GetAwaiter().GetResult();
        var body = r.Content.ReadAsStringAsync().GetAwaiter().GetResult();
        Assert.True(r.StatusCode == HttpStatusCode.OK, $"GET {pathAndQuery}: {(int)r.StatusCode} {body}");
        return JsonDocument.Parse(body);
    }

    public void Dispose()
    {
        try
        {
            if (_process is { HasExited: false })
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit(5000);
            }
        }
        catch (InvalidOperationException)
        {
        }
        _process?.Dispose();
        Http.Dispose();
    }
}

/// <summary>End to end: the LKML case's spans over real OTLP (gRPC and HTTP/protobuf) into the Aspire Dashboard, read
/// back through its telemetry HTTP API (GET /api/telemetry/traces/{traceId}).</summary>
[Collection(OtlpCollection.Name)]
public class AspireDashboardTests(AspireDashboard dashboard) : IClassFixture<AspireDashboard>
{
    private sealed record ApiSpan(string TraceId, string SpanId, string ParentSpanId, string Name, Dictionary<string, string> Attributes, List<(string TraceId, string SpanId)> Links, string Service);

    private static string Value(JsonElement v)
    {
        foreach (var p in v.EnumerateObject())
            return p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString()! : p.Value.GetRawText();
        return "";
    }

    private static string Str(JsonElement e, string name) => e.TryGetProperty(name, out var v) ? v.GetString() ?? "" : "";

    private static List<ApiSpan> Spans(JsonDocument doc)
    {
        var r = new List<ApiSpan>();
        foreach (var rs in doc.RootElement.GetProperty("data").GetProperty("resourceSpans").EnumerateArray())
        {
            string service = rs.TryGetProperty("resource", out var res) && res.TryGetProperty("attributes", out var ra)
                ? ra.EnumerateArray().Where(a => a.GetProperty("key").GetString() == "service.name").Select(a => Value(a.GetProperty("value"))).FirstOrDefault() ?? ""
                : "";
            foreach (var ss in rs.GetProperty("scopeSpans").EnumerateArray())
                foreach (var s in ss.GetProperty("spans").EnumerateArray())
                {
                    var attrs = new Dictionary<string, string>();
                    if (s.TryGetProperty("attributes", out var at))
                        foreach (var a in at.EnumerateArray()) attrs[a.GetProperty("key").GetString()!] = Value(a.GetProperty("value"));
                    var links = new List<(string, string)>();
                    if (s.TryGetProperty("links", out var ls))
                        foreach (var l in ls.EnumerateArray()) links.Add((Str(l, "traceId"), Str(l, "spanId")));
                    r.Add(new ApiSpan(Str(s, "traceId"), Str(s, "spanId"), Str(s, "parentSpanId"), Str(s, "name"), attrs, links, service));
                }
        }
        return r;
    }

    [Theory]
    [InlineData(OtlpExportProtocol.Grpc, 0x1000UL)]
    [InlineData(OtlpExportProtocol.HttpProtobuf, 0x2000UL)]
    public void The_LKML_spans_arrive_in_the_Aspire_Dashboard_with_names_ids_and_attributes(OtlpExportProtocol protocol, ulong salt)
    {
        Assert.True(dashboard.StartError is null, dashboard.StartError);
        var recorded = new ListSink();
        OtlpTraceSink sink;
        using (sink = new OtlpTraceSink(new OtlpSinkOptions
        {
            Endpoint = protocol == OtlpExportProtocol.Grpc ? dashboard.OtlpGrpc : dashboard.OtlpHttp,
            Protocol = protocol,
            Epoch = DateTimeOffset.UtcNow.AddMinutes(-1),
            ScheduledDelay = TimeSpan.FromMilliseconds(50),
        }))
        {
            Scenarios.Lkml(FaultPolicy.Merged, sameVma: true, new SaltedSink(new TeeSink(recorded, sink), salt));
            sink.Complete();
            Assert.True(sink.Flushed, $"flush finished; dashboard output:\n{dashboard.Output}");
        }
        // Salted before the tee: recorded and exported spans both carry Hi ^ salt.
        var expected = recorded.All.Select(s => (Trace: s.Trace.ToString(), Span: s)).ToList();
        Assert.Equal(expected.Count, sink.Exported);
        Assert.Equal(0, sink.Dropped);

        // GET /api/telemetry/spans (OTLP JSON), polled until every exported span is there.
        var traceIds = expected.Select(e => e.Trace).ToHashSet();
        var received = new List<ApiSpan>();
        var sw = Stopwatch.StartNew();
        string last = "";
        while (sw.Elapsed < TimeSpan.FromSeconds(10))
        {
            var (status, body) = dashboard.TryGet("/api/telemetry/spans?limit=100000");
            last = body;
            if (status == HttpStatusCode.OK)
            {
                using var doc = JsonDocument.Parse(body);
                received = Spans(doc).Where(s => traceIds.Contains(s.TraceId)).ToList();
                if (received.Count >= expected.Count) break;
            }
            Thread.Sleep(100);
        }
        Assert.True(received.Count == expected.Count, $"{received.Count} of {expected.Count} spans read back; last answer: {last[..Math.Min(last.Length, 2000)]}");

        Assert.Equal(expected.Select(e => e.Span.Name).Order(), received.Select(s => s.Name).Order());
        Assert.All(received, s => Assert.True(s.Service is "" or "distemu", s.Service));
        var bySpanId = received.ToDictionary(s => s.SpanId);
        foreach (var (trace, s) in expected)
        {
            var a = bySpanId[s.SpanId.ToString("x16")];
            Assert.Equal(trace, a.TraceId);
            Assert.Equal(s.Name, a.Name);
            Assert.Equal(s.ParentId == 0 ? "" : s.ParentId.ToString("x16"), a.ParentSpanId);
            Assert.Equal(s.Process, a.Attributes["emu.process"]);
            Assert.Equal(s.StartNs.ToString(), a.Attributes["emu.start_ns"]);
        }
        var fault = received.Single(s => s.Name == "page_fault" && received.Any(w => w.Name == "migration_entry_wait" && w.ParentSpanId == s.SpanId));
        Assert.Equal("merged", fault.Attributes["emu.policy"]);
        // (emu.outcome / emu.fault.result are not checked here: SaltedSink copies tags at Write, before SpanRecorder adds them.)
        var wait = received.Single(s => s.Name == "migration_entry_wait");
        var migration = received.Single(s => s.Name == "migrate_page");
        Assert.Contains((migration.TraceId, migration.SpanId), wait.Links);
        Assert.True(long.Parse(wait.Attributes["emu.wait_ns"]) > 100_000);
    }
}
