wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
wrk.headers["x-api-key"] = os.getenv("KEY")
counter = 0
request = function()
  counter = counter + 1
  local body = '{"to": "p' .. counter .. '-' .. math.random(1, 1000000000) .. '@example.test", "subject": "Hi", "html": "<p>hi</p>", "from_email": "hello@brand.test"}'
  return wrk.format(nil, nil, nil, body)
end
